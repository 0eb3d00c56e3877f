//! Web Push in Chromium: the app installs (the manifest parsed without
//! errors, as Lighthouse's installability check reads it; the service
//! worker registered for the whole site), the one notifications control
//! ("Turn on notifications") asks for permission only from the click and
//! goes on to subscribe at the browser's push service with the server's key
//! (headless Chromium has no push service to reach: the test follows the
//! flow up to that call), the state shows on, off or blocked, turning off
//! unsubscribes, and the service worker's push handler shows the
//! notification (a push event dispatched to it through DevTools) with the
//! room's address.

use std::time::Duration;

use serde_json::{Value, json};

use super::{PASSWORD, common::*, driver::Driver};

/// Counts, from before any script of the page runs, the calls that ask
/// for permission and the subscribe calls (with the key they pass).
const WATCH_CALLS: &str = r#"
  window.__asked = 0;
  window.__subscribed = [];
  if (window.Notification) {
    const ask = Notification.requestPermission.bind(Notification);
    Notification.requestPermission = (...args) => { window.__asked += 1; return ask(...args); };
  }
  if (window.PushManager) {
    const subscribe = PushManager.prototype.subscribe;
    PushManager.prototype.subscribe = function (options) {
      window.__subscribed.push({
        userVisibleOnly: options.userVisibleOnly,
        key: btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)))
          .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
      });
      return subscribe.call(this, options);
    };
  }
"#;

async fn eval(person: &super::driver::Person, script: &str) -> Value {
    person
        .client
        .execute_async(&format!("const done = arguments[arguments.length - 1]; ({script}).then(done, (e) => done('error: ' + e));"), vec![])
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn the_app_installs_asks_only_from_a_click_and_shows_a_push() {
    let app = spawn_app_with(|config| config.push.vapid_subject = Some("mailto:ops@lobby.test".into())).await;
    let driver = Driver::start().await;
    let bob = driver.person().await;
    bob.register(&app.base, "bob", PASSWORD).await;
    bob.devtools("Page.enable", json!({})).await;
    bob.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": WATCH_CALLS })).await;
    bob.goto(&format!("{}/chat", app.base)).await;
    bob.wait_text("#connection", |t| t == "Connected").await;

    // Installable: the manifest as Chromium parsed it, with no errors.
    let manifest = bob.devtools("Page.getAppManifest", json!({})).await;
    assert_eq!(manifest["errors"], json!([]), "{manifest}");
    assert!(manifest["url"].as_str().unwrap().ends_with("/public/manifest.webmanifest"));
    let parsed: Value = serde_json::from_str(manifest["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        (parsed["display"].clone(), parsed["start_url"].clone()),
        (json!("standalone"), json!("/chat"))
    );
    let icons = parsed["icons"].as_array().unwrap();
    for (size, purpose) in
        [("192x192", "any"), ("512x512", "any"), ("192x192", "maskable"), ("512x512", "maskable")]
    {
        assert!(icons.iter().any(|i| i["sizes"] == size && i["purpose"] == purpose), "{size} {purpose}");
    }
    for icon in icons {
        let res = reqwest::get(format!("{}{}", app.base, icon["src"].as_str().unwrap())).await.unwrap();
        assert_eq!(res.headers()["content-type"], "image/png");
    }
    // The worker controls the whole site.
    let worker =
        eval(&bob, "navigator.serviceWorker.ready.then((r) => [r.scope, r.active && r.active.scriptURL])")
            .await;
    assert_eq!(worker, json!([format!("{}/", app.base), format!("{}/sw.js", app.base)]));
    let installable = bob.devtools("Page.getInstallabilityErrors", json!({})).await;
    let errors: Vec<String> = installable["installabilityErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errorId"].as_str().unwrap_or("").to_owned())
        .collect();
    // Headless Chromium reports the profile itself; the manifest and worker are ours.
    let ours: Vec<&String> =
        errors.iter().filter(|e| !matches!(e.as_str(), "in-incognito" | "not-from-secure-origin")).collect();
    assert!(ours.is_empty(), "installability: {errors:?}");

    // Nothing asked on load; the state says off.
    assert_eq!(bob.client.execute("return window.__asked", vec![]).await.unwrap(), json!(0));
    assert_eq!(bob.text("#notify").await, "Turn on notifications");
    assert_eq!(bob.text("#notify-state").await, "Notifications are off.");
    // One control for notifications on the page, not one per kind.
    let controls = bob
        .client
        .execute("return [...document.querySelectorAll('button')].filter((b) => /notif/i.test(b.textContent)).length", vec![])
        .await
        .unwrap();
    assert_eq!(controls, json!(1));

    // Allowed in the browser's own settings (DevTools here): on at once,
    // nothing asked.
    bob.devtools("Browser.grantPermissions", json!({ "origin": app.base, "permissions": ["notifications"] }))
        .await;
    bob.wait_text("#notify-state", |t| t.starts_with("Notifications are on")).await;
    assert_eq!(bob.text("#notify").await, "Turn off notifications");
    assert_eq!(bob.client.execute("return window.__asked", vec![]).await.unwrap(), json!(0));

    // Off: unsubscribed, and said so.
    bob.click("#notify").await;
    bob.wait_text("#notify-state", |t| t == "Notifications are off.").await;
    assert_eq!(bob.text("#notify").await, "Turn on notifications");
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 0);

    // On again: the click asks (answered at once, granted) and subscribes
    // with the server's key.
    bob.client.execute("window.__subscribed = []", vec![]).await.unwrap();
    bob.click("#notify").await;
    let mut subscribed = json!([]);
    for _ in 0..200 {
        subscribed = bob.client.execute("return window.__subscribed", vec![]).await.unwrap();
        if subscribed.as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        bob.client.execute("return window.__asked", vec![]).await.unwrap(),
        json!(1),
        "asked once, from the click"
    );
    let cookie = app.login_cookie("bob").await;
    let key: Value =
        app.client_with(&cookie).get(app.url("/api/push/key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(subscribed, json!([{ "userVisibleOnly": true, "key": key["publicKey"] }]));
    // On either way (this page shows them while a tab is open); also with
    // no tab open if this Chromium reached a push service (the subscription
    // is then the server's), else the state says why not.
    let state = bob.wait_text("#notify-state", |t| t.starts_with("Notifications are on")).await;
    assert_eq!(bob.text("#notify").await, "Turn off notifications");
    if state.contains("also when no Lobby tab is open") {
        assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 1);
    } else {
        assert!(state.contains("push service"), "{state}");
    }

    // The service worker's push handler: a push event dispatched to it shows
    // the notification, titled with the room, sender and text as its body,
    // tagged per room. DevTools names the worker's registration by an id
    // it does not tell the page (0 in a fresh profile, but not always), so
    // the push goes to the first 64; the others have no worker to take it.
    let payload = json!({"room": 7, "roomName": "study", "from": "alice", "text": "see you at 5", "url": "/chat/7", "count": 2});
    bob.devtools("ServiceWorker.enable", json!({})).await;
    for id in 0..64 {
        bob.devtools(
            "ServiceWorker.deliverPushMessage",
            json!({ "origin": app.base, "registrationId": id.to_string(), "data": payload.to_string() }),
        )
        .await;
    }
    let mut shown = json!([]);
    for _ in 0..100 {
        shown = eval(
            &bob,
            "navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) => list.map((n) => [n.title, n.body, n.tag, n.data && n.data.url]))",
        )
        .await;
        if shown.as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        shown,
        json!([[
            "study",
            "alice: see you at 5\n(2 new messages)",
            "lobby-room-7",
            format!("{}/chat/7", app.base)
        ]])
    );
    bob.assert_clean_console(&[]).await;

    // Turned off, it stays off in this browser.
    bob.click("#notify").await;
    bob.wait_text("#notify-state", |t| t == "Notifications are off.").await;
    bob.goto(&format!("{}/chat", app.base)).await;
    bob.wait_text("#notify-state", |t| t == "Notifications are off.").await;
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 0);

    // Blocked by the browser: said so, and no button to press.
    bob.devtools(
        "Browser.setPermission",
        json!({ "origin": app.base, "permission": { "name": "notifications" }, "setting": "denied" }),
    )
    .await;
    bob.goto(&format!("{}/chat", app.base)).await;
    let blocked = bob.wait_text("#notify-state", |t| t.contains("blocked")).await;
    assert!(blocked.contains("blocked by this browser"), "{blocked}");
    assert!(!bob.find("#notify").await.is_displayed().await.unwrap());
}
