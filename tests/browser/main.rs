//! End-to-end tests in a real browser: Debian's headless Chromium driven
//! through ChromeDriver. They need `chromium` and `chromium-driver`, so they
//! are ignored by plain `cargo test`; run them with
//! `cargo test --test browser -- --ignored` (`.ci/run` does), after
//! `npm ci --prefix tests/browser` (axe-core, for the accessibility check).
//! The one through nginx also needs nginx and PostgreSQL
//! (`LOBBY_TEST_POSTGRES`); the sign-in one (`sso`) node and
//! `npm ci --prefix tests/sso/oidc`. Asked for without what they need, they fail.

#[path = "../common/mod.rs"]
mod common;
mod driver;
mod files;
mod push;
mod rooms;
mod sso;

use std::time::Duration;

use common::*;
use driver::{Driver, Person};
use fantoccini::{Locator, key::Key};

const PASSWORD: &str = "correct horse battery";

async fn open_chat_tab(person: &Person, base: &str, new_tab: bool) -> fantoccini::wd::WindowHandle {
    if new_tab {
        let tab = person.client.new_window(true).await.unwrap();
        person.client.switch_to_window(tab.handle.clone()).await.unwrap();
    }
    person.goto(&format!("{base}/chat")).await;
    person.wait_text("#connection", |t| t == "Connected").await;
    person.client.window().await.unwrap()
}

async fn switch(person: &Person, tab: &fantoccini::wd::WindowHandle) {
    person.client.switch_to_window(tab.clone()).await.unwrap();
}

/// The lines of the conversation, read in one go (items are replaced when
/// a message is edited, so holding on to elements would go stale).
async fn messages(person: &Person) -> Vec<String> {
    let script = "return [...document.querySelectorAll('#messages li')].map((li) => li.innerText)";
    let texts = person.client.execute(script, vec![]).await.unwrap();
    serde_json::from_value(texts).unwrap()
}

async fn wait_message(person: &Person, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        if let Some(found) = messages(person).await.into_iter().find(|m| check(m)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such line in #messages: {:?}", messages(person).await);
}

/// Two people, each in a browser of their own, registered through the form.
async fn alice_and_bob(driver: &Driver, base: &str) -> (Person, Person) {
    let (alice, bob) = (driver.person().await, driver.person().await);
    alice.register(base, "alice", PASSWORD).await;
    bob.register(base, "bob", PASSWORD).await;
    (alice, bob)
}

async fn send(person: &Person, text: &str) {
    let field = person.find("#m").await;
    field.send_keys(&format!("{text}{}", char::from(Key::Enter))).await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn register_log_out_and_log_in_through_the_forms() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;

    alice.register(&app.base, "alice", PASSWORD).await;
    assert_eq!(alice.text("#welcome").await, "Welcome, alice!");

    alice.click("a#logout").await;
    alice.wait_url(|u| u.path() == "/").await;
    assert!(alice.client.find(Locator::Css("#login")).await.is_ok());

    // A wrong password shows the error next to the login form.
    alice.fill("#login-username", "alice").await;
    alice.fill("#login-password", "not the password").await;
    alice.click("#login button[type=submit]").await;
    let error = alice.wait_text("#login-error", |t| !t.is_empty()).await;
    assert_eq!(error, "Invalid username or password.");
    assert_eq!(alice.find("#login-username").await.prop("value").await.unwrap().as_deref(), Some("alice"));

    // Keyboard only: type, Tab to the password, Enter to submit.
    let name = alice.find("#login-username").await;
    name.clear().await.unwrap();
    name.send_keys(&format!("alice{}", char::from(Key::Tab))).await.unwrap();
    let focused = alice.client.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("login-password"));
    focused.send_keys(&format!("{PASSWORD}{}", char::from(Key::Enter))).await.unwrap();
    alice.wait_url(|u| u.path() == "/profile").await;
    assert_eq!(alice.text("#welcome").await, "Welcome, alice!");

    // Registering a taken name shows the 409 message on the form.
    alice.click("a#logout").await;
    alice.wait_url(|u| u.path() == "/").await;
    alice.fill("#register-username", "ALICE").await;
    alice.fill("#register-password", PASSWORD).await;
    alice.click("#register button[type=submit]").await;
    assert!(alice.wait_text("#register-error", |t| !t.is_empty()).await.contains("taken"));

    alice.assert_clean_console(&[401, 409]).await;
    alice.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn tabs_and_people_see_the_count_messages_and_leaves() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await;

    // Two tabs of one browser (one cookie): both show 2.
    let tab1 = open_chat_tab(&alice, &app.base, false).await;
    let tab2 = open_chat_tab(&alice, &app.base, true).await;
    alice.wait_text("#num-users", |t| t == "2 users online").await;
    switch(&alice, &tab1).await;
    alice.wait_text("#num-users", |t| t == "2 users online").await;

    // Another person joins: 3, and the join line shows in alice's tabs.
    let bob_tab = open_chat_tab(&bob, &app.base, false).await;
    bob.wait_text("#num-users", |t| t == "3 users online").await;
    alice.wait_text("#num-users", |t| t == "3 users online").await;
    wait_message(&alice, |m| m == "bob joined.").await;

    // A message typed in one tab reaches every other tab, with the sender's name.
    send(&alice, "hello from tab one").await;
    wait_message(&alice, |m| m.starts_with("alice") && m.contains("hello from tab one")).await;
    assert_eq!(alice.find("#m").await.prop("value").await.unwrap().as_deref(), Some(""), "the box clears");
    switch(&alice, &tab2).await;
    wait_message(&alice, |m| m.starts_with("alice") && m.contains("hello from tab one")).await;
    wait_message(&bob, |m| m.starts_with("alice") && m.contains("hello from tab one")).await;

    // Markup is shown as text and runs nothing.
    let markup = r#"<img src=x onerror="window.__pwned=1"><b>bold</b>"#;
    send(&bob, markup).await;
    let shown = wait_message(&alice, |m| m.contains("<img")).await;
    assert!(shown.contains(markup), "{shown}");
    for person in [&alice, &bob] {
        let safe = person
            .client
            .execute(
                "return window.__pwned === undefined && document.querySelectorAll('#messages img, #messages b').length === 0",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(safe, serde_json::Value::Bool(true));
    }

    // Closing a tab brings the count down everywhere.
    alice.client.close_window().await.unwrap();
    switch(&alice, &tab1).await;
    alice.wait_text("#num-users", |t| t == "2 users online").await;
    bob.wait_text("#num-users", |t| t == "2 users online").await;

    // Logging out in a third tab sends the open chat tab home; bob sees the leave.
    let tab3 = alice.client.new_window(true).await.unwrap();
    switch(&alice, &tab3.handle).await;
    alice.goto(&format!("{}/profile", app.base)).await;
    alice.click("a#logout").await;
    alice.wait_url(|u| u.path() == "/").await;
    switch(&alice, &tab1).await;
    alice.wait_url(|u| u.path() == "/").await;
    wait_message(&bob, |m| m == "alice left.").await;
    bob.wait_text("#num-users", |t| t == "1 user online").await;

    let _ = bob_tab;
    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn an_open_chat_reconnects_after_a_server_restart_and_shows_what_it_missed() {
    let app = spawn_app().await;
    let addr = app.addr;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", PASSWORD).await;
    let bob_cookie = app.cookie("bob").await;
    open_chat_tab(&alice, &app.base, false).await;
    send(&alice, "before the restart").await;
    wait_message(&alice, |m| m.contains("before the restart")).await;

    let dir = app.stop().await;
    alice.wait_text("#connection", |t| t == "Reconnecting…").await;
    let app = start(dir, |c| c.listen_addr = addr).await;
    // Someone speaks before the tab is back.
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    bob.chat("while you were away").await;
    bob.until("chat message").await;

    alice.wait_text("#connection", |t| t == "Connected").await;
    wait_message(&alice, |m| m.starts_with("bob") && m.contains("while you were away")).await;
    let lines = messages(&alice).await;
    assert_eq!(
        lines.iter().filter(|m| m.contains("before the restart")).count(),
        1,
        "no duplicates: {lines:?}"
    );

    send(&alice, "after the restart").await;
    wait_message(&alice, |m| m.contains("after the restart")).await;
    assert!(bob.until("chat message").await["message"] == "after the restart");
    alice.close().await;
}

const SIZES: [(u32, u32, &str); 2] = [(1280, 900, "desktop"), (375, 812, "phone")];

/// Screenshots the page at each width in light and dark, and checks that
/// nothing scrolls sideways and that axe-core finds nothing serious.
async fn look_at(person: &Person, page: &str) {
    for scheme in ["light", "dark"] {
        person.prefer_color_scheme(scheme).await;
        for (width, height, label) in SIZES {
            person.screenshot(&format!("{page}-{label}-{scheme}"), width, height).await;
            let overflow = person
                .client
                .execute("return document.documentElement.scrollWidth > window.innerWidth", vec![])
                .await
                .unwrap();
            assert_eq!(overflow, serde_json::Value::Bool(false), "{page}: horizontal scrolling at {width}px");
            person.assert_accessible(&format!("{page} at {width}px, {scheme}")).await;
        }
    }
    person.prefer_color_scheme("light").await;
    person.client.set_window_size(1280, 900).await.unwrap();
}

/// Every page, as a person sees it: phone and desktop widths, light and
/// dark, each checked by axe-core.
#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn every_page_at_phone_and_desktop_width_in_light_and_dark() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;

    alice.goto(&format!("{}/", app.base)).await;
    look_at(&alice, "home").await;
    alice.fill("#login-username", "nobody").await;
    alice.fill("#login-password", "wrong password").await;
    alice.click("#login button[type=submit]").await;
    alice.wait_text("#login-error", |t| !t.is_empty()).await;
    look_at(&alice, "home-error").await;
    alice.goto(&format!("{}/no-such-page", app.base)).await;
    look_at(&alice, "not-found").await;

    alice.register(&app.base, "alice", PASSWORD).await; // the first account: an admin
    look_at(&alice, "profile").await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    // Rooms beside the conversation: a private one with something unread
    // and a mention, one with a topic, a direct conversation, an open room
    // alice is not in.
    let design = rooms::private_room(&app, &bob_cookie, "design-review", &["alice"]).await;
    let topic = serde_json::json!({ "name": "release-notes", "kind": "private", "topic": "What ships on Friday", "people": ["alice"] });
    rooms::call(&app, &bob_cookie, "POST", "/api/rooms", topic).await;
    rooms::call(
        &app,
        &bob_cookie,
        "POST",
        "/api/rooms",
        serde_json::json!({ "name": "general", "kind": "open" }),
    )
    .await;
    rooms::call(&app, &bob_cookie, "POST", "/api/direct", serde_json::json!({ "people": ["alice"] })).await;
    open_chat_tab(&alice, &app.base, false).await;
    send(&alice, "Hi everyone!").await;
    bob.chat("Hello @alice, welcome to the lobby. This line is long enough to wrap on a phone screen.").await;
    wait_message(&alice, |m| m.contains("welcome to the lobby")).await;
    for text in ["The mockups are up.", "@alice could you look at the second one?"] {
        bob.emit("chat message", serde_json::json!({ "room": design, "message": text })).await;
    }
    rooms::until(&alice, &rooms::unread(design, true)).await;
    bob.emit("typing", serde_json::Value::Null).await;
    alice.wait_text("#typing", |t| t == "bob is typing…").await;
    look_at(&alice, "chat").await;
    // A room of its own, at its address.
    alice.goto(&format!("{}/chat/{design}", app.base)).await;
    alice.wait_text("#connection", |t| t == "Connected").await;
    wait_message(&alice, |m| m.contains("second one")).await;
    look_at(&alice, "chat-room").await;
    // The dialogs: making a room (private, so it asks for people), and its settings.
    alice.click("#new-room").await;
    alice.click("#new-room-form input[value=private]").await;
    alice.find("#new-room-people").await;
    look_at(&alice, "chat-new-room").await;
    alice.click("#new-room-dialog [data-close]").await;
    alice.click("#room-settings").await;
    look_at(&alice, "chat-settings").await;
    alice.click("#settings-dialog [data-close]").await;
    alice.goto(&format!("{}/account", app.base)).await;
    look_at(&alice, "account").await;
    alice.goto(&format!("{}/admin", app.base)).await;
    alice.click("#invites form button").await;
    alice.find("#new-invite").await;
    look_at(&alice, "admin").await;
    alice.assert_clean_console(&[401, 404]).await;
    alice.close().await;
}

/// Who is here, who is typing, and mentions, between two people.
#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn people_see_who_is_here_who_is_typing_and_their_mentions() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await;
    open_chat_tab(&alice, &app.base, false).await;
    open_chat_tab(&bob, &app.base, false).await;

    for person in [&alice, &bob] {
        person.wait_text("#people-count", |t| t == "2").await;
        person.wait_text("#people", |t| t == "alice (you)\nbob" || t == "alice\nbob (you)").await;
    }

    // Typing shows for others (never for the typist) and clears after 4 s…
    bob.find("#m").await.send_keys("hel").await.unwrap();
    alice.wait_text("#typing", |t| t == "bob is typing…").await;
    let shown = std::time::Instant::now();
    assert_eq!(bob.text("#typing").await, "");
    alice.wait_text("#typing", |t| t.is_empty()).await;
    let cleared = shown.elapsed();
    assert!(cleared > Duration::from_secs(3), "cleared after about 4 s, not {cleared:?}");

    // …or at once when their message comes. Two and more typists by name.
    let carol_cookie = app.cookie("carol").await;
    let dave_cookie = app.cookie("dave").await;
    let mut carol = common::ws::Ws::open(&app.base, &carol_cookie).await;
    let mut dave = common::ws::Ws::open(&app.base, &dave_cookie).await;
    bob.find("#m").await.send_keys("lo").await.unwrap();
    alice.wait_text("#typing", |t| t == "bob is typing…").await;
    carol.emit("typing", serde_json::Value::Null).await;
    alice.wait_text("#typing", |t| t == "bob and carol are typing…").await;
    dave.emit("typing", serde_json::Value::Null).await;
    alice.wait_text("#typing", |t| t == "several people are typing…").await;
    carol.chat("done").await;
    dave.chat("me too").await;
    alice.wait_text("#typing", |t| t == "bob is typing…").await;
    bob.find("#m").await.send_keys(" @alice, and @nobody").await.unwrap();
    bob.find("#m").await.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
    wait_message(&alice, |m| m.starts_with("bob") && m.contains("hello @alice")).await;
    assert_eq!(alice.text("#typing").await, "", "a message ends its author's typing at once");

    // The mention: strongly for alice, marked for everyone else; @nobody is not a user.
    let strong = alice.find("#messages li.mentions-me mark.mention-me").await;
    assert_eq!(strong.text().await.unwrap(), "@alice");
    let marks = alice.client.find_all(Locator::Css("#messages mark")).await.unwrap();
    assert_eq!(marks.len(), 1, "only the existing user is marked");
    let plain = bob.find("#messages li mark.mention").await;
    assert_eq!(plain.text().await.unwrap(), "@alice");
    assert!(bob.client.find(Locator::Css("#messages mark.mention-me")).await.is_err());

    // Bob leaves: alice's list and count follow.
    bob.goto(&format!("{}/profile", app.base)).await;
    wait_message(&alice, |m| m == "bob left.").await;
    alice.wait_text("#people-count", |t| t == "3").await;
    alice.wait_text("#people", |t| t == "alice (you)\ncarol\ndave").await;
    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

/// An app where one socket may send hundreds of messages at once (to fill
/// a conversation quickly).
async fn spawn_app_without_chat_limits() -> TestApp {
    spawn_app_with(|c| {
        c.live.chat_burst = 100_000;
        c.live.chat_rate = 100_000.0;
    })
    .await
}

/// The `id` and top edge (px) of the messages shown, oldest first.
async fn shown_messages(person: &Person) -> Vec<(i64, f64)> {
    let value = person
        .client
        .execute(
            "return [...document.querySelectorAll('#messages li.message')]
               .map((li) => [Number(li.dataset.id), li.getBoundingClientRect().top]);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn scrolling_up_loads_older_messages_without_jumping_back_to_the_first() {
    let app = spawn_app_without_chat_limits().await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    for i in 1..=300 {
        bob.chat(&format!("message number {i}")).await;
    }
    while bob.until("chat message").await["id"] != 300 {}
    drop(bob);

    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", PASSWORD).await;
    open_chat_tab(&alice, &app.base, false).await;
    wait_message(&alice, |m| m.ends_with("message number 300")).await;
    let first = shown_messages(&alice).await;
    assert_eq!(first.len(), 50, "the newest 50 first");

    let mut loads = 0;
    loop {
        let before = shown_messages(&alice).await;
        if alice.client.find(Locator::Css("#messages li.beginning")).await.is_ok() {
            break;
        }
        alice.client.execute("document.getElementById('messages').scrollTop = 0;", vec![]).await.unwrap();
        let (anchor, top) = shown_messages(&alice).await[0];
        let mut after = before.clone();
        for _ in 0..100 {
            after = shown_messages(&alice).await;
            if after.len() > before.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(after.len() > before.len(), "scrolling to the top loads older messages");
        let moved = after.iter().find(|(id, _)| *id == anchor).unwrap().1 - top;
        assert!(moved.abs() <= 2.0, "the message read stays put (moved {moved} px)");
        loads += 1;
        assert!(loads <= 10, "the beginning is reached");
    }
    let ids: Vec<i64> = shown_messages(&alice).await.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=300).collect::<Vec<_>>(), "every message once, in order, back to the first");
    assert_eq!(alice.text("#messages li.beginning").await, "This is the beginning of the chat.");
    alice.assert_clean_console(&[]).await;
    alice.close().await;
}

/// Sets the open room's notification level from its settings.
async fn set_level(person: &Person, level: &str) {
    person.click("#room-settings").await;
    person.click(&format!("#room-level-form input[value={level}]")).await;
    person.wait_text("#settings-status", |t| t == "Saved.").await;
    person.click("#settings-dialog [data-close]").await;
}

/// The texts of the messages just before and after the "New messages" divider.
async fn divider_between(person: &Person) -> (String, String) {
    person.wait_text("#connection", |t| t == "Connected").await;
    person.find("#new-messages").await;
    let around = person
        .client
        .execute(
            "const d = document.getElementById('new-messages');
             return [d.previousElementSibling.querySelector('.text').textContent,
                     d.nextElementSibling.querySelector('.text').textContent];",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(around).unwrap()
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn returning_shows_where_the_new_messages_start_and_a_hidden_tab_counts_them() {
    let app = spawn_app().await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", PASSWORD).await;
    let chat_tab = open_chat_tab(&alice, &app.base, false).await;
    // The lobby tells of mentions only, unless one asks for every message.
    set_level(&alice, "all").await;
    for i in 1..=3 {
        bob.chat(&format!("seen {i}")).await;
    }
    wait_message(&alice, |m| m.ends_with("seen 3")).await;
    assert!(alice.client.find(Locator::Css("#new-messages")).await.is_err(), "nothing unread yet");

    // Another tab in front: the chat tab is hidden, and its title counts.
    let other = alice.client.new_window(true).await.unwrap();
    switch(&alice, &other.handle).await;
    alice.goto(&format!("{}/profile", app.base)).await;
    bob.chat("unseen 1").await;
    bob.chat("unseen 2").await;
    let counted = eventually(Duration::from_secs(10), || async {
        alice.tab_titles().await.iter().any(|t| t == "(2) Chat · Lobby")
    })
    .await;
    assert!(counted, "the hidden tab's title counts the unread: {:?}", alice.tab_titles().await);

    // The chat opened again in that tab: the divider sits before the first
    // unread, and reading there clears the hidden tab's count too.
    alice.goto(&format!("{}/chat", app.base)).await;
    assert_eq!(divider_between(&alice).await, ("seen 3".into(), "unseen 1".into()));
    let cleared = eventually(Duration::from_secs(10), || async {
        alice.tab_titles().await.iter().all(|t| t == "Chat · Lobby")
    })
    .await;
    assert!(cleared, "read in one tab, read in all: {:?}", alice.tab_titles().await);

    // Leaving the chat and coming back to it.
    alice.client.close_window().await.unwrap();
    switch(&alice, &chat_tab).await;
    alice.goto(&format!("{}/profile", app.base)).await;
    bob.chat("later 1").await;
    bob.chat("later 2").await;
    alice.goto(&format!("{}/chat", app.base)).await;
    assert_eq!(divider_between(&alice).await, ("unseen 2".into(), "later 1".into()));
    let in_view = alice
        .client
        .execute(
            "const r = document.getElementById('new-messages').getBoundingClientRect();
             const v = document.getElementById('messages').getBoundingClientRect();
             return r.top >= v.top && r.bottom <= v.bottom;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(in_view, serde_json::Value::Bool(true), "the page scrolls to the divider");
    assert_eq!(alice.client.title().await.unwrap(), "Chat · Lobby", "a visible tab counts nothing");
    alice.assert_clean_console(&[]).await;
    alice.close().await;
}

/// The cluster as a person meets it: nginx in front of two nodes on one
/// PostgreSQL, no sticky sessions. Two people, tabs landing on different
/// nodes; counts, chat and logout behave as on one server.
#[tokio::test]
#[ignore = "needs chromium + chromium-driver, nginx, and PostgreSQL (set LOBBY_TEST_POSTGRES)"]
async fn two_nodes_behind_nginx_behave_as_one_server() {
    assert!(common::nginx::binary().is_some(), "this test needs nginx (apt-get install nginx)");
    let port = common::nginx::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let (_db, nodes) = common::cluster::nodes(2, |c| {
        c.public_url = Some(public.parse().unwrap());
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let nginx = common::nginx::Nginx::start(port, &[nodes[0].addr, nodes[1].addr]).await;
    let base = &nginx.base;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, base).await;

    let alice_tab1 = open_chat_tab(&alice, base, false).await;
    let bob_tab = open_chat_tab(&bob, base, false).await;
    let alice_tab2 = open_chat_tab(&alice, base, true).await;
    // nginx deals requests round-robin, and a page load is a fixed number of
    // requests, so each reload would land its socket on the same node: shift
    // the turn by one request, then reload, until the sockets are spread.
    for _ in 0..10 {
        if nodes.iter().all(|n| n.realtime.connections_here() > 0) {
            break;
        }
        let _ = reqwest::get(format!("{base}/healthz")).await;
        alice.client.refresh().await.unwrap();
        alice.wait_text("#connection", |t| t == "Connected").await;
    }
    let spread: Vec<usize> = nodes.iter().map(|n| n.realtime.connections_here()).collect();
    assert!(spread.iter().all(|n| *n > 0), "tabs on both nodes: {spread:?}");

    for (person, tab) in [(&alice, &alice_tab1), (&alice, &alice_tab2), (&bob, &bob_tab)] {
        switch(person, tab).await;
        person.wait_text("#num-users", |t| t == "3 users online").await;
    }
    switch(&alice, &alice_tab1).await;
    send(&alice, "hello across the cluster").await;
    wait_message(&bob, |m| m.starts_with("alice") && m.contains("hello across the cluster")).await;
    switch(&alice, &alice_tab2).await;
    wait_message(&alice, |m| m.starts_with("alice") && m.contains("hello across the cluster")).await;
    send(&bob, "and back").await;
    wait_message(&alice, |m| m.starts_with("bob") && m.contains("and back")).await;

    // Logging out (on whichever node nginx picks) sends every tab home.
    let tab3 = alice.client.new_window(true).await.unwrap();
    switch(&alice, &tab3.handle).await;
    alice.goto(&format!("{base}/profile")).await;
    alice.click("a#logout").await;
    alice.wait_url(|u| u.path() == "/").await;
    for tab in [&alice_tab1, &alice_tab2] {
        switch(&alice, tab).await;
        alice.wait_url(|u| u.path() == "/").await;
    }
    wait_message(&bob, |m| m == "alice left.").await;
    bob.wait_text("#num-users", |t| t == "1 user online").await;
    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

/// Focuses a message's button by its accessible name, the way a keyboard
/// user reaches it (the buttons show on focus), and presses Enter.
async fn press(person: &Person, label: &str) {
    let css = format!("#messages button[aria-label=\"{label}\"]");
    let button = person.find(&css).await;
    person
        .client
        .execute("arguments[0].focus()", vec![serde_json::to_value(&button).unwrap()])
        .await
        .unwrap();
    button.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();
}

/// Editing your own message with the keyboard, an admin deleting someone's
/// message, and a ban sending an open tab home.
#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn people_edit_their_messages_and_an_admin_deletes_and_bans() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await; // alice, the first, is the admin
    open_chat_tab(&alice, &app.base, false).await;
    open_chat_tab(&bob, &app.base, false).await;
    send(&bob, "helo everyone").await;
    wait_message(&alice, |m| m.contains("helo everyone")).await;
    wait_message(&bob, |m| m.contains("helo everyone")).await;

    // Escape leaves the message as it was.
    press(&bob, "Edit your message").await;
    let field = bob.find("#messages form.editor input").await;
    field.send_keys(&format!("oops{}", char::from(Key::Escape))).await.unwrap();
    assert!(bob.client.find(Locator::Css("#messages form.editor")).await.is_err(), "the editor closed");
    // Enter saves, and everyone sees the new text, marked as edited.
    press(&bob, "Edit your message").await;
    let field = bob.find("#messages form.editor input").await;
    field.clear().await.unwrap();
    field.send_keys(&format!("hello everyone{}", char::from(Key::Enter))).await.unwrap();
    for person in [&alice, &bob] {
        let line = wait_message(person, |m| m.contains("hello everyone")).await;
        assert!(line.contains("edited"), "{line:?}");
    }
    assert!(!messages(&alice).await.iter().any(|m| m.contains("helo")), "the old text is gone");
    assert!(
        alice.client.find(Locator::Css("#messages button[aria-label=\"Edit bob’s message\"]")).await.is_err(),
        "only the author edits"
    );

    // The admin deletes bob's message: it goes away in both browsers.
    press(&alice, "Delete bob’s message").await;
    alice.client.accept_alert().await.unwrap();
    for person in [&alice, &bob] {
        for _ in 0..100 {
            if !messages(person).await.iter().any(|m| m.contains("hello everyone")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!messages(person).await.iter().any(|m| m.contains("hello everyone")), "deleted for everyone");
    }

    // A ban from the admin page sends bob's open tab home, and he cannot log in.
    alice.goto(&format!("{}/admin", app.base)).await;
    alice.click("button[aria-label=\"Ban bob\"]").await;
    alice.wait_text("#users tr[data-username=bob]", |t| t.contains("Banned")).await;
    bob.wait_url(|u| u.path() == "/").await;
    bob.fill("#login-username", "bob").await;
    bob.fill("#login-password", PASSWORD).await;
    bob.click("#login button[type=submit]").await;
    bob.wait_text("#login-error", |t| t.contains("This account is suspended.")).await;
    alice.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

/// The texts of the elements `css` finds, read in one go.
async fn texts_of(person: &Person, css: &str) -> Vec<String> {
    let script = format!("return [...document.querySelectorAll({css:?})].map((e) => e.textContent)");
    serde_json::from_value(person.client.execute(&script, vec![]).await.unwrap()).unwrap()
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn search_from_the_box_to_the_message_highlighted_in_its_room() {
    let app = spawn_app_without_chat_limits().await;
    // The message sought, far back in the lobby: 120 others came after it.
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    bob.chat("Deploying the new build to staging tonight").await;
    bob.chat("the deploy went fine").await;
    for i in 1..=120 {
        bob.chat(&format!("filler number {i}")).await;
    }
    while bob.until("chat message").await["message"] != "filler number 120" {}
    drop(bob);

    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", PASSWORD).await;
    open_chat_tab(&alice, &app.base, false).await;
    wait_message(&alice, |m| m.ends_with("filler number 120")).await;

    // `/` from the conversation goes to the search box; Enter searches.
    alice.click("#messages").await;
    alice.client.active_element().await.unwrap().send_keys("/").await.unwrap();
    let focused = alice.client.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("search-q"));
    focused.send_keys(&format!("deploying{}", char::from(Key::Enter))).await.unwrap();
    alice.wait_text("#search-status", |t| t.starts_with("2 messages found")).await;
    // Newest first, each match marked as it is written.
    assert_eq!(texts_of(&alice, "#search-results mark.match").await, ["deploy", "Deploying"]);
    alice.assert_accessible("the search results").await;

    // The older result opens in its room, the lobby, scrolled to and highlighted.
    let results = alice.client.find_all(Locator::Css("#search-results button.result")).await.unwrap();
    results[1].click().await.unwrap();
    let found = alice.wait_text("#search-context li.found", |t| !t.is_empty()).await;
    assert!(found.contains("Deploying the new build to staging tonight"), "{found}");
    assert_eq!(alice.text("#search-title").await, "In #lobby");
    let shown = alice
        .client
        .execute(
            "const panel = document.getElementById('search-panel').getBoundingClientRect();
             const found = document.querySelector('#search-context li.found');
             const at = found.getBoundingClientRect();
             return document.activeElement === found && at.top >= panel.top && at.bottom <= panel.bottom",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, serde_json::Value::Bool(true), "the message is in view and has the focus");
    alice.assert_accessible("a search result in its room").await;
    let around = texts_of(&alice, "#search-context li.message .text").await;
    assert!(around.len() > 2 && around.contains(&"filler number 1".to_owned()), "{around:?}");

    // Back to the results, and Escape closes the panel, the box keeping the focus.
    alice.click("#search-back").await;
    alice.wait_text("#search-status", |t| t.starts_with("2 messages found")).await;
    alice
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys(&char::from(Key::Escape).to_string())
        .await
        .unwrap();
    let hidden =
        alice.client.execute("return document.getElementById('search-panel').hidden", vec![]).await.unwrap();
    assert_eq!(hidden, serde_json::Value::Bool(true));

    // A query the server refuses says why, in the panel.
    alice.fill("#search-q", "-deploy").await;
    alice.click("#search button[type=submit]").await;
    alice.wait_text("#search-status", |t| t.contains("not only what to leave out")).await;

    alice.assert_clean_console(&[400]).await;
    alice.close().await;
}
