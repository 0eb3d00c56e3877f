//! The WebSocket half of the contract, with real WebSocket clients against
//! the real server and database.

mod common;

use std::time::Duration;

use common::{ws::*, *};
use futures_util::SinkExt;
use serde_json::{Value, json};

/// Fast liveness so tests of dead peers finish quickly (yet with room for a
/// busy two-core machine to answer every ping in time).
const PING_INTERVAL: Duration = Duration::from_millis(1500);
const PING_TIMEOUT: Duration = Duration::from_millis(1000);

fn quick_pings(c: &mut lobby::Config) {
    c.live.ping_interval = PING_INTERVAL;
    c.live.ping_timeout = PING_TIMEOUT;
}

/// The count a brand-new socket is told first.
async fn fresh_count(app: &TestApp, cookie: &str) -> u64 {
    let mut ws = Ws::open(&app.base, cookie).await;
    match ws.next().await {
        Seen::Event(name, data) if name == "user count" => data.as_u64().unwrap(),
        other => panic!("the first frame is the count, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_frames_are_the_count_who_is_online_the_rooms_the_marker_then_the_history() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let mut ws = Ws::open(&app.base, &cookie).await;
    assert!(matches!(ws.next().await, Seen::Event(e, d) if e == "user count" && d == json!(1)));
    assert!(
        matches!(ws.next().await, Seen::Event(e, d) if e == "online users" && d == json!(["alice"])),
        "herself among them: her tab is open"
    );
    match ws.next().await {
        Seen::Event(e, d) if e == "rooms" => {
            assert_eq!(d[0]["id"], 1, "the lobby first");
            assert_eq!(d[0]["name"], "lobby");
            assert_eq!(d[0]["member"], true);
        }
        other => panic!("the rooms come after who is online: {other:?}"),
    }
    assert!(
        matches!(ws.next().await, Seen::Event(e, d) if e == "read marker" && d == json!({"lastRead": 0, "room": 1}))
    );
    assert!(matches!(ws.next().await, Seen::Event(e, d) if e == "chat history" && d == json!([])));
    let notice = ws.until("user").await;
    assert_eq!(notice, json!({"username": "alice", "currentUsers": 1, "onlineUsers": 1, "connected": true}));
}

#[tokio::test]
async fn no_valid_session_means_401_and_no_count() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let mut watcher = Ws::open(&app.base, &cookie).await;
    watcher.until_count(1).await;

    assert_eq!(connect(&app.base, None, "", &[]).await.err(), Some(401));
    let forged = format!("{}=AAAAAAAAAAAAAAAAAAAAAA", lobby::web::SESSION_COOKIE);
    assert_eq!(connect(&app.base, Some(&forged), "", &[]).await.err(), Some(401));
    let garbage = format!("{}=%%%not-base64", lobby::web::SESSION_COOKIE);
    assert_eq!(connect(&app.base, Some(&garbage), "", &[]).await.err(), Some(401));
    let bob = app.cookie("bob").await;
    app.bare_client().get(app.url("/logout")).header("cookie", &bob).send().await.unwrap();
    assert_eq!(connect(&app.base, Some(&bob), "", &[]).await.err(), Some(401), "a logged-out cookie");

    // Nothing was counted: a new socket is the second, and the watcher heard no change.
    assert!(watcher.drain(Duration::from_millis(200)).await.iter().all(|(e, _)| e != "user count"));
    assert_eq!(fresh_count(&app, &cookie).await, 2);
}

#[tokio::test]
async fn cross_origin_upgrades_are_403() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let evil = connect(&app.base, Some(&cookie), "", &[("origin", "https://evil.example")]).await;
    assert_eq!(evil.err(), Some(403));
    let ours = connect(&app.base, Some(&cookie), "", &[("origin", &app.base)]).await;
    assert!(ours.is_ok());
}

#[tokio::test]
async fn bad_upgrade_requests_are_4xx() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    assert_eq!(connect(&app.base, Some(&cookie), "?since=abc", &[]).await.err(), Some(400));
    let plain_get = app.bare_client().get(app.url("/ws")).header("cookie", &cookie).send().await.unwrap();
    assert!(plain_get.status().is_client_error(), "{}", plain_get.status());
}

#[tokio::test]
async fn tabs_count_each_but_a_user_is_announced_once() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let mut tab1 = Ws::open(&app.base, &alice).await;
    tab1.until("user").await;
    let mut tab2 = Ws::open(&app.base, &alice).await;
    tab1.until_count(2).await;
    tab2.until_count(2).await;
    let seen = tab1.drain(Duration::from_millis(300)).await;
    assert!(seen.iter().all(|(e, _)| e != "user"), "the second tab is not a new user: {seen:?}");

    let bob = app.cookie("bob").await;
    let mut bob_ws = Ws::open(&app.base, &bob).await;
    let notice = tab1.until("user").await;
    assert_eq!(notice, json!({"username": "bob", "currentUsers": 3, "onlineUsers": 2, "connected": true}));
    bob_ws.until_count(3).await;

    // Closing tabs brings the count down; the last tab announces the leave.
    tab2.stream.close(None).await.unwrap();
    bob_ws.until_count(2).await;
    assert!(bob_ws.drain(Duration::from_millis(300)).await.iter().all(|(e, _)| e != "user"));
    tab1.stream.close(None).await.unwrap();
    let notice = bob_ws.until("user").await;
    assert_eq!(notice, json!({"username": "alice", "currentUsers": 1, "onlineUsers": 1, "connected": false}));
    bob_ws.until_count(1).await;
}

#[tokio::test]
async fn abrupt_drops_leave_every_survivor_with_the_true_count() {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };
    let app = spawn_app_with(quick_pings).await;
    let mut cookies = Vec::new();
    for i in 0..10 {
        cookies.push(app.cookie(&format!("user{i}")).await);
    }
    // Every socket is read from the moment it opens, as a browser would (so
    // it answers pings); the odd ones are dropped on a signal, without a
    // close frame: their TCP connections just end.
    let (drop_odd, dropped) = tokio::sync::watch::channel(false);
    let mut survivors = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut ws = Ws::open(&app.base, &cookies[i % 10]).await;
        let latest = Arc::new(AtomicU64::new(0));
        let mut dropped = dropped.clone();
        let seen = latest.clone();
        let doomed = i % 2 == 1;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = dropped.changed(), if doomed => return,
                    frame = ws.next_within(Duration::from_secs(30)) => match frame {
                        Seen::Event(e, d) if e == "user count" => seen.store(d.as_u64().unwrap(), Ordering::SeqCst),
                        Seen::Event(..) => {}
                        Seen::Closed(code) => panic!("a survivor was closed: {code:?}"),
                    },
                }
            }
        }));
        if !doomed {
            survivors.push(latest);
        }
    }
    let all_open = eventually(Duration::from_secs(5), || {
        let survivors = &survivors;
        async move { survivors.iter().all(|c| c.load(Ordering::SeqCst) == 200) }
    })
    .await;
    assert!(all_open, "every socket saw 200");

    drop_odd.send(true).unwrap();
    // Within one ping interval + timeout, every survivor has the true count.
    tokio::time::sleep(PING_INTERVAL + PING_TIMEOUT).await;
    let counts: Vec<u64> = survivors.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(counts.iter().all(|c| *c == 100), "{counts:?}");
    for task in tasks {
        task.abort();
    }
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_counted_out() {
    let app = spawn_app_with(quick_pings).await;
    let alice = app.cookie("alice").await;
    // Registered first: a socket that is not read while a password hashes
    // would miss its pings too.
    let bob = app.cookie("bob").await;
    let mut watcher = Ws::open(&app.base, &alice).await;
    // This socket is never read again, so it never answers a ping.
    let _silent = Ws::open(&app.base, &bob).await;
    watcher.until_count(2).await;
    let started = tokio::time::Instant::now();
    // Keep the watcher reading (and so answering pings) while waiting.
    while watcher.count != Some(1) {
        let _ = watcher.next_within(Duration::from_secs(3)).await;
    }
    assert!(
        started.elapsed() < PING_INTERVAL + PING_TIMEOUT + Duration::from_millis(500),
        "counted out within about a ping interval + timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_message_reaches_everyone_with_name_id_and_time_trimmed() {
    let app = spawn_app().await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    alice.until_count(2).await;
    bob.until_count(2).await;
    alice.chat("   hello <b>world</b>  \n").await;
    for ws in [&mut alice, &mut bob] {
        let msg = ws.until("chat message").await;
        assert_eq!(msg["username"], "alice");
        assert_eq!(msg["message"], "hello <b>world</b>");
        assert!(msg["id"].as_i64().unwrap() > 0);
        let sent_at = msg["sentAt"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(sent_at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{sent_at}"
        );
    }
}

#[tokio::test]
async fn interleaved_bursts_arrive_in_one_order_for_everyone() {
    let app = spawn_app_with(|c| c.live.chat_burst = 200).await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    let mut carol = Ws::open(&app.base, &app.cookie("carol").await).await;
    for ws in [&mut alice, &mut bob, &mut carol] {
        ws.until_count(3).await;
    }
    let (a, b) = tokio::join!(
        async {
            for i in 0..100 {
                alice.chat(&format!("a{i}")).await;
            }
        },
        async {
            for i in 0..100 {
                bob.chat(&format!("b{i}")).await;
            }
        }
    );
    let _ = (a, b);
    let mut orders = Vec::new();
    for ws in [&mut alice, &mut bob, &mut carol] {
        let mut order = Vec::new();
        while order.len() < 200 {
            let msg = ws.until("chat message").await;
            order.push((msg["id"].as_i64().unwrap(), msg["message"].as_str().unwrap().to_owned()));
        }
        assert!(order.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
        orders.push(order);
    }
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[1], orders[2]);
    // Each sender's own messages keep their order.
    let alices: Vec<_> = orders[0].iter().filter(|m| m.1.starts_with('a')).map(|m| m.1.clone()).collect();
    assert_eq!(alices, (0..100).map(|i| format!("a{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_survives_a_restart_and_since_returns_exactly_the_missed() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let mut ws = Ws::open(&app.base, &cookie).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ws.chat(&format!("m{i}")).await;
        ids.push(ws.until("chat message").await["id"].as_i64().unwrap());
    }
    drop(ws);
    let dir = app.stop().await;
    let app = start(dir, |_| {}).await;

    let mut ws = Ws::open(&app.base, &cookie).await;
    let history = ws.until("chat history").await;
    let texts: Vec<_> = history.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());

    let mut resumed = connect(&app.base, Some(&cookie), &format!("?since={}", ids[6]), &[]).await.unwrap();
    let history = resumed.until("chat history").await;
    let got: Vec<i64> = history.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(got, ids[7..].to_vec());
}

#[tokio::test]
async fn history_is_the_last_fifty_and_since_is_capped_at_five_hundred() {
    let app = spawn_app_with(|c| c.live.chat_burst = 1000).await;
    let cookie = app.cookie("alice").await;
    let mut ws = Ws::open(&app.base, &cookie).await;
    for i in 0..520 {
        ws.chat(&format!("m{i}")).await;
    }
    let mut last = 0;
    while last < 520 {
        last = ws.until("chat message").await["id"].as_i64().unwrap();
    }
    let mut fresh = Ws::open(&app.base, &cookie).await;
    let ids = fresh.history_ids().await;
    assert_eq!(ids, (471..=520).collect::<Vec<_>>());
    let mut resumed = connect(&app.base, Some(&cookie), "?since=0", &[]).await.unwrap();
    let ids = resumed.history_ids().await;
    assert_eq!(ids, (21..=520).collect::<Vec<_>>(), "the newest 500, ending where the live stream starts");
}

#[tokio::test]
async fn history_and_live_stream_meet_without_gap_or_duplicate() {
    let app = spawn_app_with(|c| c.live.chat_burst = 1000).await;
    let sender_cookie = app.cookie("alice").await;
    let reader_cookie = app.cookie("bob").await;
    let mut sender = Ws::open(&app.base, &sender_cookie).await;
    let sending = tokio::spawn(async move {
        for i in 0..300 {
            sender.chat(&format!("m{i}")).await;
        }
        sender
    });
    // Readers join while messages are being committed.
    let mut readers = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        readers.push(connect(&app.base, Some(&reader_cookie), "?since=0", &[]).await.unwrap());
    }
    let _sender = sending.await.unwrap();
    for mut reader in readers {
        let mut ids = reader.history_ids().await;
        while ids.last() != Some(&300) {
            ids.push(reader.until("chat message").await["id"].as_i64().unwrap());
        }
        assert_eq!(ids, (1..=300).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn bad_frames_get_the_contract_answers_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    let mut ws = Ws::open(&app.base, &alice).await;
    ws.until("chat history").await;

    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "bad_request"),
        ("{}".into(), "bad_request"),
        (json!({"event": "nope", "data": "x"}).to_string(), "bad_request"),
        (json!({"event": "chat message", "data": 42}).to_string(), "bad_request"),
        (json!({"event": "chat message"}).to_string(), "bad_request"),
        (json!({"event": "chat message", "data": "   "}).to_string(), "invalid_message"),
        (json!({"event": "chat message", "data": "x".repeat(1001)}).to_string(), "invalid_message"),
    ];
    for (frame, code) in cases {
        ws.send_text(frame.clone()).await;
        let err = ws.until("error").await;
        assert_eq!(err["code"], code, "{frame}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Still open and still serving.
    ws.chat("still here").await;
    assert_eq!(ws.until("chat message").await["message"], "still here");
    assert_eq!(bob.until("chat message").await["message"], "still here");
}

#[tokio::test]
async fn each_user_gets_a_burst_of_twenty_across_all_tabs() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let mut tab1 = Ws::open(&app.base, &alice).await;
    let mut tab2 = Ws::open(&app.base, &alice).await;
    tab1.until_count(2).await;
    for i in 0..10 {
        tab1.chat(&format!("one{i}")).await;
        tab2.chat(&format!("two{i}")).await;
    }
    tab2.chat("one too many").await;
    let err = tab2.until("error").await;
    assert_eq!(err["code"], "rate_limited");
    let retry = err["retryAfterMs"].as_u64().expect("rate_limited says when to retry, in whole ms");
    assert!((1..=200).contains(&retry), "a token comes within 200 ms at 5 a second: {retry}");
    let delivered = tab1.drain(Duration::from_millis(300)).await;
    assert_eq!(delivered.iter().filter(|(e, _)| e == "chat message").count(), 20);
    // The bucket refills at 5 per second.
    tab2.drain(Duration::from_millis(450)).await;
    tab2.chat("after a pause").await;
    assert_eq!(tab2.until("chat message").await["message"], "after a pause");
}

#[tokio::test]
async fn binary_oversized_and_flooding_sockets_are_closed_with_their_codes() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let mut bystander = Ws::open(&app.base, &app.cookie("bob").await).await;
    bystander.until("chat history").await;

    let mut ws = Ws::open(&app.base, &alice).await;
    ws.stream.send(tokio_tungstenite::tungstenite::Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(ws.until_closed(Duration::from_secs(5)).await, Some(1003));

    let mut ws = Ws::open(&app.base, &alice).await;
    ws.send_text(json!({"event": "chat message", "data": "x".repeat(17 * 1024)}).to_string()).await;
    assert_eq!(ws.until_closed(Duration::from_secs(5)).await, Some(1009));

    let mut ws = Ws::open(&app.base, &alice).await;
    for _ in 0..200 {
        if ws.stream.send(tokio_tungstenite::tungstenite::Message::text("junk")).await.is_err() {
            break;
        }
    }
    assert_eq!(ws.until_closed(Duration::from_secs(5)).await, Some(1008));

    // None of that disturbed anyone else, and every closed socket was counted out.
    bystander.chat("fine").await;
    assert_eq!(bystander.until("chat message").await["message"], "fine");
    let mut check = Ws::open(&app.base, &alice).await;
    check.until_count(2).await;
}

#[tokio::test]
async fn logout_closes_the_sessions_other_sockets_with_4401() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let alice_elsewhere = app.login_cookie("alice").await;
    let mut tab1 = Ws::open(&app.base, &alice).await;
    let mut tab2 = Ws::open(&app.base, &alice).await;
    let mut other_device = Ws::open(&app.base, &alice_elsewhere).await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    bob.until_count(4).await;

    let res = app.bare_client().post(app.url("/logout")).header("cookie", &alice).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let started = tokio::time::Instant::now();
    assert_eq!(tab1.until_closed(Duration::from_secs(1)).await, Some(4401));
    assert_eq!(tab2.until_closed(Duration::from_secs(1)).await, Some(4401));
    assert!(started.elapsed() < Duration::from_secs(1));
    // Another session of the same user, and other users, stay.
    bob.until_count(2).await;
    other_device.until_count(2).await;
}

#[tokio::test]
async fn an_expired_session_closes_its_sockets_with_4401() {
    let app = spawn_app_with(|c| {
        c.session_lifetime = Duration::from_secs(1);
        c.live.session_check_interval = Duration::from_millis(200);
    })
    .await;
    let mut ws = Ws::open(&app.base, &app.cookie("alice").await).await;
    assert_eq!(ws.until_closed(Duration::from_secs(4)).await, Some(4401));
}

#[tokio::test]
async fn the_sweep_closes_the_sockets_of_a_session_gone_from_the_database_and_no_others() {
    let app = spawn_app_with(|c| c.live.session_check_interval = Duration::from_millis(200)).await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    let carol = app.cookie("carol").await;
    let mut carols = [Ws::open(&app.base, &carol).await, Ws::open(&app.base, &carol).await];
    // Ended where no notification reached this node: only the row is gone.
    app.db
        .execute(&format!(
            "DELETE FROM {} WHERE id IN (SELECT s.session_id FROM account_sessions s
             JOIN users u ON u.id = s.user_id WHERE u.username = 'alice')",
            app.db.sessions_table()
        ))
        .await;
    assert_eq!(alice.until_closed(Duration::from_secs(3)).await, Some(4401));
    // Several sweeps later, the others' sockets are open and carry chat.
    bob.read_for(Duration::from_millis(700)).await;
    carols[0].chat("still here").await;
    for ws in [&mut bob, &mut carols[1]] {
        assert_eq!(ws.until("chat message").await["message"], "still here");
    }
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_keeps_every_message_anyone_saw() {
    let app = spawn_app_with(|c| c.live.chat_burst = 1000).await;
    let cookie = app.cookie("alice").await;
    let mut sender = Ws::open(&app.base, &cookie).await;
    let mut reader = Ws::open(&app.base, &app.cookie("bob").await).await;
    reader.until("chat history").await;
    for i in 0..200 {
        sender.chat(&format!("m{i}")).await;
    }
    let dir_handle = app.db.clone();
    let stopping = tokio::spawn(app.stop());

    let mut seen = Vec::new();
    let code = loop {
        match reader.next_within(Duration::from_secs(10)).await {
            Seen::Event(e, data) if e == "chat message" => seen.push(data["id"].as_i64().unwrap()),
            Seen::Event(..) => {}
            Seen::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(1001));
    let _ = sender.drain(Duration::from_millis(100)).await;
    stopping.await.unwrap();

    let app = start(dir_handle, |_| {}).await;
    let mut ws = connect(&app.base, Some(&cookie), "?since=0", &[]).await.unwrap();
    let stored = ws.history_ids().await;
    assert!(!seen.is_empty());
    for id in &seen {
        assert!(stored.contains(id), "message {id} was seen before shutdown, so it is stored");
    }
    // What was stored is what was sent, in order, with nothing skipped (frames
    // the server had not read yet when it closed were never accepted).
    let texts: Vec<String> = (0..stored.len()).map(|i| format!("m{i}")).collect();
    let mut ws = connect(&app.base, Some(&cookie), "?since=0", &[]).await.unwrap();
    let history = ws.until("chat history").await;
    let stored_texts: Vec<String> =
        history.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(stored_texts, texts);
}

#[tokio::test]
async fn a_reader_that_stalls_is_caught_up_or_told_to_reconnect_and_loses_nothing() {
    let app = spawn_app_with(|c| {
        c.live.chat_burst = 100_000;
        c.live.event_backlog = 16;
    })
    .await;
    let sender_cookie = app.cookie("alice").await;
    let reader_cookie = app.cookie("bob").await;
    let mut reader = connect_stalling(&app.base, &reader_cookie, "").await;
    reader.until("chat history").await;
    let sender = Ws::open(&app.base, &sender_cookie).await;
    let (mut outgoing, mut incoming) = futures_util::StreamExt::split(sender.stream);
    // The sender keeps reading its own socket; the reader reads nothing while
    // 3000 large messages go out.
    let sender_reads = tokio::spawn(async move {
        let mut last = 0;
        while let Some(Ok(frame)) = futures_util::StreamExt::next(&mut incoming).await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                if v["event"] == "chat message" {
                    last = v["data"]["id"].as_i64().unwrap();
                    if last == 3000 {
                        break;
                    }
                }
            }
        }
        last
    });
    let body = "x".repeat(990);
    for i in 0..3000 {
        let frame = json!({"event": "chat message", "data": format!("{i} {body}")}).to_string();
        outgoing.send(tokio_tungstenite::tungstenite::Message::text(frame)).await.unwrap();
    }
    assert_eq!(sender_reads.await.unwrap(), 3000);
    let mut ids = Vec::new();
    let mut told_to_reconnect = false;
    loop {
        match reader.next_within(Duration::from_secs(10)).await {
            Seen::Event(e, d) if e == "chat message" => ids.push(d["id"].as_i64().unwrap()),
            Seen::Event(..) => {}
            Seen::Closed(code) => {
                assert_eq!(code, Some(1013), "the only close for a slow reader");
                assert!(!told_to_reconnect, "one reconnect is enough");
                told_to_reconnect = true;
                let since = ids.last().copied().unwrap_or(0);
                reader =
                    connect(&app.base, Some(&reader_cookie), &format!("?since={since}"), &[]).await.unwrap();
                let history = reader.until("chat history").await;
                ids.extend(history.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()));
            }
        }
        if ids.last() == Some(&3000) {
            break;
        }
    }
    // The tail is complete and in order (a 1013 reconnect resumes from the history's newest 500).
    let tail: Vec<i64> = ids.iter().copied().filter(|id| *id > 2500).collect();
    assert_eq!(tail, (2501..=3000).collect::<Vec<_>>());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "no duplicates, in order");
    // 3000 messages of 1 KB cannot all wait in a 2 KB receive buffer plus the
    // server's 16-event backlog: the server had to catch up or close.
    assert!(told_to_reconnect || ids.len() == 3000, "caught up from the history without a gap");
}

#[tokio::test]
async fn past_the_connection_ceiling_upgrades_get_503_and_nothing_is_counted() {
    let app = spawn_app_with(|c| c.live.max_connections = 2).await;
    let cookie = app.cookie("alice").await;
    let mut first = Ws::open(&app.base, &cookie).await;
    let _second = Ws::open(&app.base, &cookie).await;
    first.until_count(2).await;
    assert_eq!(connect(&app.base, Some(&cookie), "", &[]).await.err(), Some(503));
    assert!(first.drain(Duration::from_millis(200)).await.iter().all(|(e, _)| e != "user count"));
    // Room again once one closes.
    drop(_second);
    first.until_count(1).await;
    assert!(connect(&app.base, Some(&cookie), "", &[]).await.is_ok());
}

/// A socket whose message is waiting for the database goes on reading and
/// writing: here it hears someone typing while its own commit is held up by
/// a lock, and then gets its message like everyone else.
#[tokio::test]
async fn a_sender_reads_on_while_its_message_is_committed() {
    let app = spawn_app().await;
    let (alice, bob) = (app.cookie("alice").await, app.cookie("bob").await);
    let mut alice_ws = Ws::open(&app.base, &alice).await;
    alice_ws.until("chat history").await;
    let mut bob_ws = Ws::open(&app.base, &bob).await;
    bob_ws.until("chat history").await;
    alice_ws.drain(Duration::from_millis(200)).await;

    // Hold the messages table: the commit waits (not long enough to fail).
    let pool = app.db.pool().await;
    let mut lock = pool.begin().await.unwrap();
    let hold = if app.db.is_postgres() {
        "LOCK TABLE messages IN EXCLUSIVE MODE"
    } else {
        "UPDATE messages SET body = body WHERE id = 0"
    };
    if !app.db.is_postgres() {
        // SQLite takes its write lock at the first write of the transaction.
        sqlx::query("SELECT 1").execute(&mut *lock).await.unwrap();
    }
    sqlx::query(hold).execute(&mut *lock).await.unwrap();
    alice_ws.chat("held up").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bob_ws.emit("typing", Value::Null).await;
    // Typing goes out in half-second ticks; the commit is still held.
    match alice_ws.next_within(Duration::from_millis(1200)).await {
        Seen::Event(name, data) => {
            assert_eq!((name.as_str(), data), ("typing", json!({"username": "bob", "room": 1})))
        }
        other => panic!("the sender heard nothing while committing: {other:?}"),
    }
    lock.commit().await.unwrap();
    assert_eq!(alice_ws.until("chat message").await["message"], "held up");
}
