//! End-to-end tests in a real browser: Debian's headless Chromium driven
//! through ChromeDriver. They need `chromium` and `chromium-driver`, so they
//! are ignored by plain `cargo test`; run them with
//! `cargo test --test browser -- --ignored` (`.ci/run` does).

#[path = "../common/mod.rs"]
mod common;
mod driver;

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

async fn messages(person: &Person) -> Vec<String> {
    let items = person.client.find_all(Locator::Css("#messages li")).await.unwrap();
    let mut texts = Vec::new();
    for item in items {
        texts.push(item.text().await.unwrap());
    }
    texts
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
    let alice = driver.person().await;
    let bob = driver.person().await;
    alice.register(&app.base, "alice", PASSWORD).await;
    bob.register(&app.base, "bob", PASSWORD).await;

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

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn screenshots_at_desktop_and_phone_widths() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    let bob_cookie = app.cookie("bob").await;

    for (width, height, label) in [(1280, 900, "desktop"), (375, 812, "phone")] {
        alice.client.set_window_size(width, height).await.unwrap();
        alice.goto(&format!("{}/", app.base)).await;
        alice.screenshot(&format!("home-{label}"), width, height).await;
        // No element wider than the window at this width.
        let overflow = alice
            .client
            .execute("return document.documentElement.scrollWidth > window.innerWidth", vec![])
            .await
            .unwrap();
        assert_eq!(overflow, serde_json::Value::Bool(false), "horizontal scrolling at {width}px");
    }
    alice.client.set_window_size(1280, 900).await.unwrap();
    alice.goto(&format!("{}/", app.base)).await;
    alice.fill("#login-username", "nobody").await;
    alice.fill("#login-password", "wrong password").await;
    alice.click("#login button[type=submit]").await;
    alice.wait_text("#login-error", |t| !t.is_empty()).await;
    alice.screenshot("home-error-desktop", 1280, 900).await;

    alice.register(&app.base, "alice", PASSWORD).await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    for (width, height, label) in [(1280, 900, "desktop"), (375, 812, "phone")] {
        alice.client.set_window_size(width, height).await.unwrap();
        alice.goto(&format!("{}/profile", app.base)).await;
        alice.screenshot(&format!("profile-{label}"), width, height).await;
    }
    alice.client.set_window_size(1280, 900).await.unwrap();
    open_chat_tab(&alice, &app.base, false).await;
    send(&alice, "Hi everyone!").await;
    bob.chat("Hello alice, welcome to the lobby. This line is long enough to wrap on a phone screen.").await;
    wait_message(&alice, |m| m.contains("welcome to the lobby")).await;
    for (width, height, label) in [(1280, 900, "desktop"), (375, 812, "phone")] {
        alice.screenshot(&format!("chat-{label}"), width, height).await;
        let overflow = alice
            .client
            .execute("return document.documentElement.scrollWidth > window.innerWidth", vec![])
            .await
            .unwrap();
        assert_eq!(overflow, serde_json::Value::Bool(false), "horizontal scrolling at {width}px");
    }
    alice.assert_clean_console(&[401]).await;
    alice.close().await;
}

/// The cluster as a person meets it: nginx in front of two nodes on one
/// PostgreSQL, no sticky sessions. Two people, tabs landing on different
/// nodes; counts, chat and logout behave as on one server.
#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn two_nodes_behind_nginx_behave_as_one_server() {
    if common::db::skip_without_postgres("two_nodes_behind_nginx_behave_as_one_server") {
        return;
    }
    if common::nginx::binary().is_none() {
        common::db::say_skipped(
            "two_nodes_behind_nginx_behave_as_one_server: needs nginx (apt-get install nginx)",
        );
        return;
    }
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
    let alice = driver.person().await;
    let bob = driver.person().await;
    alice.register(base, "alice", PASSWORD).await;
    bob.register(base, "bob", PASSWORD).await;

    let alice_tab1 = open_chat_tab(&alice, base, false).await;
    let bob_tab = open_chat_tab(&bob, base, false).await;
    let alice_tab2 = open_chat_tab(&alice, base, true).await;
    // nginx deals requests round-robin; reload until the sockets are spread
    // over both nodes (almost always at once).
    for _ in 0..10 {
        if nodes.iter().all(|n| n.realtime.presence.here() > 0) {
            break;
        }
        alice.client.refresh().await.unwrap();
        alice.wait_text("#connection", |t| t == "Connected").await;
    }
    let spread: Vec<usize> = nodes.iter().map(|n| n.realtime.presence.here()).collect();
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
