//! Web Push, end to end: the app sends to a push service stand-in
//! (`common::push_service`) that checks each push as a browser's push
//! service would (VAPID, TTL, Content-Encoding) and decrypts it as the
//! browser would. On either engine (PostgreSQL with `LOBBY_TEST_POSTGRES`);
//! the cluster tests need PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{
    push_service::{Answer, Browser, PushService},
    ws::*,
    *,
};
use lobby::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const VAPID_SUBJECT: &str = "mailto:ops@lobby.test";

/// Push on, to the stand-in on 127.0.0.1 (over plain http), with a short
/// window so coalescing shows within a test.
fn push_settings(config: &mut Config) {
    config.push.allow_insecure = true;
    config.push.vapid_subject = Some(VAPID_SUBJECT.into());
    config.push.window = Duration::from_secs(2);
    config.push.timeout = Duration::from_secs(2);
}

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn server_key(app: &TestApp, client: &reqwest::Client) -> String {
    let (status, body) = call(client, Method::GET, app.url("/api/push/key"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["publicKey"].as_str().unwrap().to_owned()
}

/// The app, a stand-in that knows its key, and people (by name) with their cookies.
struct World {
    app: TestApp,
    service: PushService,
    /// The first account: the admin.
    admin: String,
}

impl World {
    async fn start(tweak: impl FnOnce(&mut Config)) -> World {
        let app = spawn_app_with(|config| {
            push_settings(config);
            tweak(config);
        })
        .await;
        World::around(app).await
    }

    async fn around(app: TestApp) -> World {
        let service = PushService::start().await;
        let admin = app.cookie("admin").await;
        service.expect_server_key(&server_key(&app, &app.client_with(&admin)).await);
        World { app, service, admin }
    }

    /// Subscribes a new browser of the session `cookie`.
    async fn subscribe(&self, cookie: &str) -> Browser {
        let browser = self.service.browser();
        let (status, body) = call(
            &self.app.client_with(cookie),
            Method::POST,
            self.app.url("/api/push/subscriptions"),
            Some(browser.subscription()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        browser
    }

    async fn post(&self, cookie: &str, path: &str, body: Value) -> Value {
        let (status, body) =
            call(&self.app.client_with(cookie), Method::POST, self.app.url(path), Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

/// A socket past its greeting, to chat with (its user is online while it is open).
async fn socket(app: &TestApp, cookie: &str) -> Ws {
    let mut ws = Ws::open(&app.base, cookie).await;
    ws.until("chat history").await;
    ws
}

/// Sends `text` to `room` and returns the message's id, once committed. A
/// room made a moment ago may not have reached the socket yet (its `room
/// joined` rides the log): then it is sent again, a little later.
async fn say(ws: &mut Ws, room: i64, text: &str) -> i64 {
    ws.emit("chat message", json!({ "room": room, "message": text })).await;
    let mut tries = 0;
    loop {
        match ws.next().await {
            Seen::Event(event, message) if event == "chat message" && message["message"] == text => {
                return message["id"].as_i64().unwrap();
            }
            Seen::Event(event, error) if event == "error" && error["code"] == "not_found" && tries < 40 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                ws.emit("chat message", json!({ "room": room, "message": text })).await;
            }
            Seen::Event(event, error) if event == "error" => panic!("{text:?} refused: {error}"),
            Seen::Event(..) => {}
            Seen::Closed(code) => panic!("closed ({code:?}) while sending {text:?}"),
        }
    }
}

/// Nothing more arrives at `browser` for `quiet` (the queue has had its turn).
async fn nothing_more(service: &PushService, browser: &Browser, had: usize, quiet: Duration) {
    tokio::time::sleep(quiet).await;
    let got = service.received(browser);
    assert_eq!(got.len(), had, "pushes that should not have been sent: {:?}", &got[had.min(got.len())..]);
}

#[tokio::test]
async fn the_key_is_a_p256_point_kept_across_restarts_and_needs_a_login() {
    let app = spawn_app_with(push_settings).await;
    let (status, _) = call(&app.bare_client(), Method::GET, app.url("/api/push/key"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let cookie = app.cookie("alice").await;
    let key = server_key(&app, &app.client_with(&cookie)).await;
    let point = common::push_service::unb64(&key).expect("base64url");
    assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed P-256 point");
    assert!(p256::PublicKey::from_sec1_bytes(&point).is_ok());

    let db = app.stop().await;
    let again = common::start(db, push_settings).await;
    let cookie = again.login_cookie("alice").await;
    assert_eq!(server_key(&again, &again.client_with(&cookie)).await, key, "made once, kept in the database");
}

#[tokio::test]
async fn subscribing_needs_a_login_keys_and_a_public_https_endpoint() {
    // PUSH_ALLOW_INSECURE off: the rules as in production.
    let app = spawn_app_with(|config| config.push.vapid_subject = Some(VAPID_SUBJECT.into())).await;
    let service = PushService::start().await;
    let browser = service.browser();
    let cookie = app.cookie("alice").await;
    let alice = app.client_with(&cookie);
    let url = app.url("/api/push/subscriptions");
    let with = |endpoint: &str| json!({"endpoint": endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}});

    for method in [Method::POST, Method::DELETE] {
        let (status, _) =
            call(&app.bare_client(), method, url.clone(), Some(with("https://push.example.com/x"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) =
        call(&alice, Method::POST, url.clone(), Some(json!({"endpoint": "https://push.example.com/x"})))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no keys");
    let (status, _) = call(
        &alice,
        Method::POST,
        url.clone(),
        Some(json!({"keys": {"p256dh": browser.p256dh, "auth": browser.auth}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no endpoint");
    for (p256dh, auth) in
        [("AAAA", browser.auth.as_str()), (browser.p256dh.as_str(), "AAAA"), ("", ""), ("!!", "!!")]
    {
        let body =
            json!({"endpoint": "https://push.example.com/x", "keys": {"p256dh": p256dh, "auth": auth}});
        let (status, said) = call(&alice, Method::POST, url.clone(), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "bad keys {p256dh:?} {auth:?}");
        assert!(said["error"].as_str().unwrap().contains("keys"), "{said}");
    }
    let res = alice.post(&url).body("endpoint=x").header("content-type", "text/plain").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    for endpoint in [
        &browser.endpoint as &str, // http, and on loopback
        "http://push.example.com/x",
        "https://127.0.0.1/x",
        "https://127.0.0.1:8443/x",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[::ffff:10.1.2.3]/x",
        "https://10.1.2.3/x",
        "https://172.16.5.4/x",
        "https://192.168.1.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/x",
        "https://[fd00::1]/x",
        "https://224.0.0.251/x",
        "https://[ff02::1]/x",
        "https://localhost/x",
        "not a url",
    ] {
        let (status, said) = call(&alice, Method::POST, url.clone(), Some(with(endpoint))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint}: {said}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 0);

    // A name that does not resolve now is kept, and judged at every send.
    let (status, _) =
        call(&alice, Method::POST, url.clone(), Some(with("https://push.lobby.invalid/x"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&alice, Method::POST, url.clone(), Some(with("https://8.8.8.8/send/1"))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 2);

    // The cross-origin rule holds for both changes.
    for method in [Method::POST, Method::DELETE] {
        let res = alice
            .request(method, &url)
            .header("sec-fetch-site", "cross-site")
            .json(&with("https://8.8.4.4/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let (status, _) = call(&alice, Method::DELETE, url.clone(), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "which one?");
    let (status, _) =
        call(&alice, Method::DELETE, url.clone(), Some(json!({"endpoint": "https://8.8.8.8/send/1"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        call(&alice, Method::DELETE, url.clone(), Some(json!({"endpoint": "https://8.8.8.8/send/1"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "already gone: the same");
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 1);
    // Someone else's is not theirs to delete.
    let bob = app.client_with(&app.cookie("bob").await);
    call(&bob, Method::DELETE, url.clone(), Some(json!({"endpoint": "https://push.lobby.invalid/x"}))).await;
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 1);
}

#[tokio::test]
async fn a_direct_message_is_pushed_signed_and_encrypted_to_someone_with_no_tab_open() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob, carol) = (app.cookie("alice").await, app.cookie("bob").await, app.cookie("carol").await);
    let bobs_phone = world.subscribe(&bob).await;
    let alices_laptop = world.subscribe(&alice).await;
    let room =
        world.post(&alice, "/api/direct", json!({"people": ["bob", "carol"]})).await["id"].as_i64().unwrap();
    let mut alice_ws = socket(app, &alice).await;

    let long = "ä".repeat(150) + &"b".repeat(150);
    say(&mut alice_ws, room, &long).await;
    let pushes = world.service.until_received(&bobs_phone, 1, Duration::from_secs(10)).await;
    let push = &pushes[0];
    assert_eq!(push.payload["room"], room);
    assert_eq!(push.payload["roomName"], "alice, carol", "a direct room is named after the others");
    assert_eq!(push.payload["from"], "alice");
    let text = push.payload["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 200);
    assert!(text.starts_with(&"ä".repeat(150)) && text.ends_with("b…"), "{text}");
    assert_eq!(push.payload["url"], format!("/chat/{room}"));
    assert_eq!(push.payload["count"], 1);
    assert!(push.ttl > 0);
    assert_eq!(push.topic.as_deref(), Some(room.to_string().as_str()));
    assert!(world.service.problems().is_empty(), "{:?}", world.service.problems());
    // Never the sender; carol has no subscription.
    nothing_more(&world.service, &alices_laptop, 0, Duration::from_secs(1)).await;
    let _ = carol;
}

/// Makes a room of `kind` by `owner` with `people`, returns its id.
async fn room(world: &World, owner: &str, name: &str, kind: &str, people: &[&str]) -> i64 {
    world.post(owner, "/api/rooms", json!({"name": name, "kind": kind, "people": people})).await["id"]
        .as_i64()
        .unwrap()
}

async fn level(world: &World, cookie: &str, room: i64, level: &str) {
    let (status, body) = call(
        &world.app.client_with(cookie),
        Method::PUT,
        world.app.url(&format!("/api/rooms/{room}/level")),
        Some(json!({"level": level})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn levels_mentions_and_membership_decide_who_is_pushed() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let phone = world.subscribe(&bob).await;
    let mut ws = socket(app, &alice).await;
    let (service, quiet) = (&world.service, Duration::from_millis(1500));
    let mut had = 0;

    // The lobby is at `mentions`: only a mention is pushed.
    say(&mut ws, 1, "hello everyone").await;
    nothing_more(service, &phone, had, quiet).await;
    say(&mut ws, 1, "hello @BOB").await;
    had += 1;
    assert_eq!(
        service.until_received(&phone, had, Duration::from_secs(10)).await[had - 1].payload["text"],
        "hello @BOB"
    );
    // At `all` in the lobby, everything (after the window).
    level(&world, &bob, 1, "all").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    say(&mut ws, 1, "lobby chatter").await;
    had += 1;
    assert_eq!(
        service.until_received(&phone, had, Duration::from_secs(10)).await[had - 1].payload["text"],
        "lobby chatter"
    );

    // An open room: `mentions` by default.
    let open = room(&world, &alice, "study", "open", &[]).await;
    world.post(&bob, &format!("/api/rooms/{open}/join"), json!({})).await;
    say(&mut ws, open, "nothing for bob").await;
    nothing_more(service, &phone, had, quiet).await;
    say(&mut ws, open, "@bob look").await;
    had += 1;
    assert_eq!(
        service.until_received(&phone, had, Duration::from_secs(10)).await[had - 1].payload["room"],
        open
    );

    // A private room: `all` by default; `mentions` then only mentions; `nothing` never.
    let private = room(&world, &alice, "secret", "private", &["bob"]).await;
    say(&mut ws, private, "in private").await;
    had += 1;
    let got = service.until_received(&phone, had, Duration::from_secs(10)).await;
    assert_eq!(
        (got[had - 1].payload["roomName"].clone(), got[had - 1].payload["text"].clone()),
        (json!("secret"), json!("in private"))
    );
    level(&world, &bob, private, "nothing").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    say(&mut ws, private, "@bob even so").await;
    nothing_more(service, &phone, had, quiet).await;

    // A direct room: pushed at `mentions` too; not at `nothing`.
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    level(&world, &bob, direct, "mentions").await;
    say(&mut ws, direct, "just us").await;
    had += 1;
    assert_eq!(
        service.until_received(&phone, had, Duration::from_secs(10)).await[had - 1].payload["roomName"],
        "alice"
    );
    level(&world, &bob, direct, "nothing").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    say(&mut ws, direct, "still just us").await;
    nothing_more(service, &phone, had, quiet).await;

    // Removed from a room: nothing more from it, mentioned or not.
    let club = room(&world, &alice, "club", "private", &["bob"]).await;
    let (status, _) = call(
        &app.client_with(&alice),
        Method::DELETE,
        app.url(&format!("/api/rooms/{club}/members/bob")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    say(&mut ws, club, "@bob you are out").await;
    nothing_more(service, &phone, had, quiet).await;
    assert!(service.problems().is_empty(), "{:?}", service.problems());
}

#[tokio::test]
async fn a_tab_open_suppresses_the_push_and_pushes_resume_once_it_closes() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let phone = world.subscribe(&bob).await;
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    let mut ws = socket(app, &alice).await;
    let bob_tab = socket(app, &bob).await;
    say(&mut ws, direct, "you are here").await;
    nothing_more(&world.service, &phone, 0, Duration::from_secs(2)).await;
    assert_eq!(app.scalar("SELECT count(*) FROM push_deliveries").await, 0);

    drop(bob_tab);
    assert!(eventually(Duration::from_secs(5), || async { !app.realtime.is_online("bob") }).await);
    say(&mut ws, direct, "you left").await;
    let got = world.service.until_received(&phone, 1, Duration::from_secs(10)).await;
    assert_eq!(
        (got[0].payload["text"].clone(), got[0].payload["count"].clone()),
        (json!("you left"), json!(1))
    );
}

#[tokio::test]
async fn pushes_for_one_room_are_coalesced_and_held_back_ones_follow_with_a_count() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let phone = world.subscribe(&bob).await;
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    let other = room(&world, &alice, "other", "private", &["bob"]).await;
    let mut ws = socket(app, &alice).await;

    say(&mut ws, direct, "one").await;
    let first = world.service.until_received(&phone, 1, Duration::from_secs(10)).await[0].clone();
    say(&mut ws, direct, "two").await;
    say(&mut ws, direct, "three").await;
    say(&mut ws, other, "elsewhere").await;
    // Another room is its own: at once.
    let got = world.service.until_received(&phone, 2, Duration::from_secs(10)).await;
    assert_eq!(got[1].payload["text"], "elsewhere");
    assert!(got[1].at.duration_since(first.at) < Duration::from_millis(1500), "not held back");
    // The held-back two: one push at the end of the window, counting them.
    let got = world.service.until_received(&phone, 3, Duration::from_secs(10)).await;
    let held = &got[2];
    assert_eq!((held.payload["text"].clone(), held.payload["count"].clone()), (json!("three"), json!(2)));
    let waited = held.at.duration_since(first.at);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?} after the first"
    );
    nothing_more(&world.service, &phone, 3, Duration::from_secs(3)).await;
    assert_eq!(first.payload["count"], 1);
}

#[tokio::test]
async fn the_window_is_thirty_seconds_by_default() {
    let world = World::start(|config| config.push.window = Config::defaults().push.window).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let phone = world.subscribe(&bob).await;
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    let mut ws = socket(app, &alice).await;
    say(&mut ws, direct, "one").await;
    let first = world.service.until_received(&phone, 1, Duration::from_secs(10)).await[0].at;
    for text in ["two", "three", "four"] {
        say(&mut ws, direct, text).await;
    }
    let got = world.service.until_received(&phone, 2, Duration::from_secs(40)).await;
    let waited = got[1].at.duration_since(first);
    assert!(waited >= Duration::from_secs(30) && waited < Duration::from_secs(33), "{waited:?}");
    assert_eq!((got[1].payload["text"].clone(), got[1].payload["count"].clone()), (json!("four"), json!(3)));
}

#[tokio::test]
async fn a_404_or_410_deletes_the_subscription_and_other_failures_are_retried() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob, carol, dave) = (
        app.cookie("alice").await,
        app.cookie("bob").await,
        app.cookie("carol").await,
        app.cookie("dave").await,
    );
    let (bobs, carols, daves) =
        (world.subscribe(&bob).await, world.subscribe(&carol).await, world.subscribe(&dave).await);
    world.service.answer(&bobs, &[Answer::NotFound]);
    world.service.answer(&carols, &[Answer::Gone]);
    world.service.answer(&daves, &[Answer::Error, Answer::Created]);
    let room = room(&world, &alice, "all-of-us", "private", &["bob", "carol", "dave"]).await;
    let mut ws = socket(app, &alice).await;
    let sent = Instant::now();
    say(&mut ws, room, "anyone there?").await;

    let got = world.service.until_received(&daves, 1, Duration::from_secs(30)).await;
    let retried_after = got[0].at.duration_since(sent);
    assert!(retried_after < Duration::from_secs(30), "the first retry within 30 s: {retried_after:?}");
    assert_eq!(world.service.hits(&daves), 2, "a 500, then the retry");
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.scalar("SELECT count(*) FROM push_subscriptions").await == 1
        })
        .await,
        "404 and 410 deleted theirs"
    );
    assert_eq!((world.service.hits(&bobs), world.service.hits(&carols)), (1, 1), "tried once each");
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.scalar("SELECT count(*) FROM push_deliveries").await == 0
        })
        .await
    );
}

#[tokio::test]
async fn a_push_that_keeps_failing_is_given_up_after_its_time_and_redirects_are_not_followed() {
    let world = World::start(|config| config.push.retry_for = Duration::from_secs(8)).await;
    let app = &world.app;
    let (alice, bob, carol) = (app.cookie("alice").await, app.cookie("bob").await, app.cookie("carol").await);
    let (bobs, carols) = (world.subscribe(&bob).await, world.subscribe(&carol).await);
    world.service.answer(&bobs, &[Answer::Error]);
    world.service.answer(&carols, &[Answer::Redirect]);
    let room = room(&world, &alice, "pair", "private", &["bob", "carol"]).await;
    let mut ws = socket(app, &alice).await;
    say(&mut ws, room, "hello?").await;
    // Tried at 0 s and after 5 s; the next would be past the 8 s.
    assert!(eventually(Duration::from_secs(5), || async { world.service.hits(&bobs) == 1 }).await);
    assert!(
        eventually(Duration::from_secs(15), || async {
            app.scalar("SELECT count(*) FROM push_deliveries").await == 0
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.service.hits(&bobs), 2);
    assert_eq!(world.service.hits(&carols), 2, "a redirect is a failure, tried again");
    assert_eq!(world.service.redirected(), 0, "and never followed");
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 2, "the subscriptions stay");
}

#[tokio::test]
async fn a_push_service_that_never_answers_costs_chat_nothing() {
    let world = World::start(|config| {
        config.push.concurrency = 4;
        config.live.chat_burst = 1000;
        config.live.chat_rate = 1000.0;
    })
    .await;
    let app = &world.app;
    let (alice, carol) = (app.cookie("alice").await, app.cookie("carol").await);
    // Twenty people with no tab open, each in a room of their own with alice.
    let mut rooms = Vec::new();
    let mut phones = Vec::new();
    for i in 0..20 {
        let name = format!("sleeper{i}");
        let cookie = app.cookie(&name).await;
        let phone = world.subscribe(&cookie).await;
        world.service.answer(&phone, &[Answer::Never]);
        phones.push(phone);
        rooms
            .push(world.post(&alice, "/api/direct", json!({"people": [name]})).await["id"].as_i64().unwrap());
    }
    let talk = room(&world, &alice, "talk", "private", &["carol"]).await;
    let mut alice_ws = socket(app, &alice).await;
    let mut carol_ws = socket(app, &carol).await;

    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(6) {
        // A message to every sleeper (each one a push that hangs)…
        for room in &rooms {
            alice_ws.emit("chat message", json!({"room": room, "message": format!("wake up {n}")})).await;
        }
        // …and a conversation beside them, timed from send to the other side.
        let text = format!("ping {n}");
        let sent = Instant::now();
        alice_ws.emit("chat message", json!({"room": talk, "message": text})).await;
        loop {
            let got = carol_ws.until("chat message").await;
            if got["message"] == text {
                break;
            }
        }
        latencies.push(sent.elapsed());
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = *latencies.last().unwrap();
    println!(
        "chat latency with a push service that never answers: median {median:?}, worst {worst:?}, {n} rounds"
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
    assert!(worst < Duration::from_millis(500), "worst {worst:?}");
    let hanging: usize = phones.iter().map(|p| world.service.hits(p)).sum();
    assert!(hanging >= 4, "the pushes did go out, and hang: {hanging}");
}

/// Bob's live session id (the row a subscription of his hangs on).
async fn subscriptions_of(app: &TestApp, user: &str) -> i64 {
    app.scalar(&format!(
        "SELECT count(*) FROM push_subscriptions s JOIN users u ON u.id = s.user_id WHERE u.username = '{user}'"
    ))
    .await
}

#[tokio::test]
async fn subscriptions_belong_to_their_session_and_end_with_it() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let admin = world.admin.clone();
    let bob = app.cookie("bob").await;
    let bob_client = app.client_with(&bob);

    // Logout.
    world.subscribe(&bob).await;
    assert_eq!(subscriptions_of(app, "bob").await, 1);
    bob_client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(subscriptions_of(app, "bob").await, 0, "logout");

    // The session ended from the account page (another of bob's).
    let first = app.login_cookie("bob").await;
    let second = app.login_cookie("bob").await;
    world.subscribe(&first).await;
    let handle: String = {
        let pool = app.db.pool().await;
        sqlx::query_scalar(
            "SELECT a.handle FROM account_sessions a JOIN push_subscriptions s ON s.session_id = a.session_id",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let res = app
        .client_with(&second)
        .post(app.url("/account/sessions/end"))
        .form(&[("session", handle)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(subscriptions_of(app, "bob").await, 0, "session ended");

    // A password change: every session of his, this one too (it gets a new id).
    let other = app.login_cookie("bob").await;
    world.subscribe(&other).await;
    world.subscribe(&second).await;
    assert_eq!(subscriptions_of(app, "bob").await, 2);
    let res = app
        .client_with(&second)
        .post(app.url("/account/password"))
        .form(&[("current", "correct horse battery"), ("new", "a brand new passphrase")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(subscriptions_of(app, "bob").await, 0, "password change");

    // A ban.
    let carol = app.cookie("carol").await;
    world.subscribe(&carol).await;
    let carol_id = app.scalar("SELECT id FROM users WHERE username = 'carol'").await;
    let res = app
        .client_with(&admin)
        .post(app.url("/admin/users/ban"))
        .form(&[("user", carol_id.to_string())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(subscriptions_of(app, "carol").await, 0, "ban");

    // Expiry: a session past its end is not pushed to, and goes with its row.
    let dave = app.cookie("dave").await;
    world.subscribe(&dave).await;
    app.db
        .execute(&format!(
            "DELETE FROM {} WHERE id IN (SELECT session_id FROM push_subscriptions)",
            app.db.sessions_table()
        ))
        .await;
    assert_eq!(subscriptions_of(app, "dave").await, 0, "the session's row gone");
}

#[tokio::test]
async fn the_same_endpoint_subscribed_again_moves_to_the_session_that_sent_it() {
    let world = World::start(|_| {}).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let browser = world.service.browser();
    let url = app.url("/api/push/subscriptions");
    for cookie in [&alice, &alice, &bob] {
        let (status, _) =
            call(&app.client_with(cookie), Method::POST, url.clone(), Some(browser.subscription())).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(app.scalar("SELECT count(*) FROM push_subscriptions").await, 1);
    assert_eq!((subscriptions_of(app, "alice").await, subscriptions_of(app, "bob").await), (0, 1));
    // The same person's new session after logging in again.
    let bob_again = app.login_cookie("bob").await;
    app.client_with(&bob).post(app.url("/logout")).send().await.unwrap();
    assert_eq!(subscriptions_of(app, "bob").await, 0);
    let (status, _) =
        call(&app.client_with(&bob_again), Method::POST, url, Some(browser.subscription())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(subscriptions_of(app, "bob").await, 1);
    // And it is pushed to.
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    let mut ws = socket(app, &alice).await;
    say(&mut ws, direct, "found you").await;
    world.service.until_received(&browser, 1, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn endpoints_are_checked_again_after_resolving_at_every_send() {
    // The rules as in production; the stand-in is on loopback, where no
    // push may go, so a subscription naming it is written in directly (as
    // if its name had resolved elsewhere when it was subscribed).
    let world = World::start(|config| config.push.allow_insecure = false).await;
    let app = &world.app;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let browser = world.service.browser();
    let port = world.service.base.rsplit(':').next().unwrap().to_owned();
    let direct = world.post(&alice, "/api/direct", json!({"people": ["bob"]})).await["id"].as_i64().unwrap();
    for (n, endpoint) in [
        format!("https://localhost:{port}/push/{}", browser.id),
        format!("https://127.0.0.1:{port}/push/{}", browser.id),
    ]
    .into_iter()
    .enumerate()
    {
        app.db
            .execute(&format!(
                "INSERT INTO push_subscriptions (endpoint, p256dh, auth, user_id, session_id, created_at)
                 SELECT '{endpoint}', '{}', '{}', user_id, session_id, 0 FROM account_sessions
                 WHERE user_id = (SELECT id FROM users WHERE username = 'bob')",
                browser.p256dh, browser.auth
            ))
            .await;
        let mut ws = socket(app, &alice).await;
        say(&mut ws, direct, &format!("knock {n}")).await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                app.scalar("SELECT count(*) FROM push_rooms WHERE pending > 0").await == 0
                    && app.scalar("SELECT count(*) FROM push_deliveries").await == 0
            })
            .await,
            "taken, tried, dropped"
        );
        assert_eq!(world.service.hits(&browser), 0, "{endpoint}: never connected to");
        app.db.execute("DELETE FROM push_subscriptions").await;
        tokio::time::sleep(Duration::from_secs(2)).await; // the window
    }
    let _ = bob;
}

// The cluster: three nodes on one PostgreSQL database.

async fn subscribe_on(app: &TestApp, service: &PushService, cookie: &str) -> Browser {
    let browser = service.browser();
    let (status, body) = call(
        &app.client_with(cookie),
        Method::POST,
        app.url("/api/push/subscriptions"),
        Some(browser.subscription()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    browser
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn on_a_cluster_each_push_is_sent_once_and_a_tab_on_any_node_suppresses_it() {
    let (_db, nodes) = cluster::nodes(3, push_settings).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = a.cookie("alice").await;
    let bob = b.cookie("bob").await;
    let keys = [
        server_key(a, &a.client_with(&alice)).await,
        server_key(b, &b.client_with(&bob)).await,
        server_key(c, &c.client_with(&bob)).await,
    ];
    assert!(keys.iter().all(|k| *k == keys[0]), "every node signs with the one key");
    let service = PushService::start().await;
    service.expect_server_key(&keys[0]);
    let phone = subscribe_on(c, &service, &bob).await;

    // Ten rooms, a message in each, sent on node A: ten pushes, one each.
    let mut rooms = Vec::new();
    for i in 0..10 {
        let (status, room) = call(
            &a.client_with(&alice),
            Method::POST,
            a.url("/api/rooms"),
            Some(json!({"name": format!("r{i}"), "kind": "private", "people": ["bob"]})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        rooms.push(room["id"].as_i64().unwrap());
    }
    let mut ws = socket(a, &alice).await;
    for (i, room) in rooms.iter().enumerate() {
        say(&mut ws, *room, &format!("hello {i}")).await;
    }
    let got = service.until_received(&phone, 10, Duration::from_secs(20)).await;
    nothing_more(&service, &phone, 10, Duration::from_secs(3)).await;
    let mut pushed: Vec<i64> = got.iter().map(|p| p.payload["room"].as_i64().unwrap()).collect();
    pushed.sort_unstable();
    assert_eq!(pushed, rooms, "each room's push once, by one node");
    assert!(got.iter().all(|p| p.payload["count"] == 1));
    assert!(service.problems().is_empty(), "{:?}", service.problems());

    // Bob opens a tab on node B: a message sent on node A is not pushed.
    tokio::time::sleep(Duration::from_secs(2)).await; // past the window
    let tab = socket(b, &bob).await;
    say(&mut ws, rooms[0], "while you are here").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.scalar("SELECT count(*) FROM push_rooms WHERE pending > 0").await == 0
        })
        .await,
        "taken (and dropped)"
    );
    nothing_more(&service, &phone, 10, Duration::from_secs(2)).await;

    // The tab closes: pushed again.
    drop(tab);
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.scalar(
                "SELECT count(*) FROM presence p JOIN users u ON u.id = p.user_id WHERE u.username = 'bob'",
            )
            .await
                == 0
        })
        .await
    );
    say(&mut ws, rooms[1], "now you are gone").await;
    let got = service.until_received(&phone, 11, Duration::from_secs(10)).await;
    assert_eq!(got[10].payload["text"], "now you are gone");
    nothing_more(&service, &phone, 11, Duration::from_secs(2)).await;
}
