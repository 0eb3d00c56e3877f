//! Many nodes on one PostgreSQL database behave as one server: real
//! WebSocket clients spread over the nodes, nodes killed, listeners cut,
//! the database crashed. These need PostgreSQL, so a plain `cargo test`
//! reports them as ignored; `LOBBY_TEST_POSTGRES=… cargo test --test cluster
//! -- --include-ignored` runs them (`.ci/run` does), and without the variable
//! they fail. The crash test starts a PostgreSQL of its own instead.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{cluster::*, ws::*, *};
use serde_json::json;

/// Fast heartbeats, so a dead node is counted out in a few seconds.
fn short_ttl(c: &mut lobby::Config) {
    c.live.node_ttl = Duration::from_secs(3);
}

fn unlimited_chat(c: &mut lobby::Config) {
    c.live.chat_burst = 1_000_000;
    c.live.chat_rate = 1_000_000.0;
}

async fn record(base: &str, cookie: &str) -> Recorder {
    let mut ws = Ws::open(base, cookie).await;
    ws.until("chat history").await;
    Recorder::spawn(ws)
}

/// Every id in the log, in order.
async fn logged_ids(db: &TestDb) -> Vec<i64> {
    let pool = db.pool().await;
    let ids = sqlx::query_scalar("SELECT id FROM messages ORDER BY id").fetch_all(&pool).await.unwrap();
    pool.close().await;
    ids
}

/// Sends `chat message`s as fast as `pause` allows until `stop`; returns how many.
fn keep_sending(
    mut ws: Ws,
    label: &'static str,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            ws.chat(&format!("{label}{sent}")).await;
            sent += 1;
            // Read what came back, so the socket never stalls.
            ws.drain(pause).await;
        }
        ws.drain(Duration::from_millis(200)).await;
        sent
    })
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn counts_and_announcements_are_the_clusters() {
    let (_db, nodes) = nodes(3, |_| {}).await;
    let alice = nodes[0].cookie("alice").await;
    let watcher = record(&nodes[0].base, &nodes[0].cookie("dave").await).await;

    let tab1 = record(&nodes[1].base, &alice).await;
    let tab2 = record(&nodes[2].base, &alice).await;
    for ws in [&watcher, &tab1, &tab2] {
        assert!(ws.until_count(3, Duration::from_secs(2)).await, "every node shows 3: {:?}", ws.count());
    }
    let joins = watcher.events("user");
    assert_eq!(
        joins.last().unwrap(),
        &json!({"username": "alice", "currentUsers": 2, "onlineUsers": 2, "connected": true})
    );

    drop(tab1);
    assert!(watcher.until_count(2, Duration::from_secs(2)).await);
    assert!(tab2.until_count(2, Duration::from_secs(2)).await);
    drop(tab2);
    assert!(watcher.until_count(1, Duration::from_secs(2)).await);
    assert!(eventually(Duration::from_secs(2), || async { watcher.announced("alice", false) == 1 }).await);
    let left = watcher.events("user").last().unwrap().clone();
    assert_eq!(left, json!({"username": "alice", "currentUsers": 1, "onlineUsers": 1, "connected": false}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((watcher.announced("alice", true), watcher.announced("alice", false)), (1, 1), "once each");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn first_and_last_tabs_on_two_nodes_at_once_are_announced_once() {
    let (_db, nodes) = nodes(3, |_| {}).await;
    let alice = nodes[0].cookie("alice").await;
    let mut watchers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        watchers.push(record(&node.base, &node.cookie(&format!("watch{i}")).await).await);
    }
    for watcher in &watchers {
        assert!(
            watcher.until_count(3, Duration::from_secs(2)).await,
            "{:?}",
            watchers.iter().map(|w| w.count()).collect::<Vec<_>>()
        );
    }
    let rounds = 5;
    for _ in 0..rounds {
        // A pause between rounds: a user's announcements are let out at
        // about one a second past a small burst (a flapping client must not
        // flood the others), and each round here must be told.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Alice's first tab opens on two nodes at the same moment…
        let (a, b) = tokio::join!(Ws::open(&nodes[0].base, &alice), Ws::open(&nodes[1].base, &alice));
        for watcher in &watchers {
            assert!(watcher.until_count(5, Duration::from_secs(2)).await);
        }
        // …and both close at the same moment.
        drop((a, b));
        for watcher in &watchers {
            assert!(watcher.until_count(3, Duration::from_secs(2)).await);
        }
        let all_told = eventually(Duration::from_secs(2), || async {
            watchers.iter().all(|w| w.announced("alice", false) == w.announced("alice", true))
        });
        assert!(all_told.await);
    }
    for watcher in &watchers {
        assert_eq!(watcher.announced("alice", true), rounds, "one join per round");
        assert_eq!(watcher.announced("alice", false), rounds, "one leave per round");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn bursts_from_every_node_arrive_in_one_order_everywhere() {
    let (db, nodes) = nodes(3, unlimited_chat).await;
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        readers.push(record(&node.base, &node.cookie(&format!("reader{i}")).await).await);
        senders.push(Ws::open(&node.base, &node.cookie(&format!("sender{i}")).await).await);
    }
    let bursts = senders.into_iter().enumerate().map(|(i, mut ws)| {
        tokio::spawn(async move {
            for k in 0..100 {
                ws.chat(&format!("{i}-{k}")).await;
            }
            ws.drain(Duration::from_millis(300)).await;
        })
    });
    for burst in bursts.collect::<Vec<_>>() {
        burst.await.unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || async { logged_ids(&db).await.len() >= 300 }).await);
    let logged = logged_ids(&db).await;
    assert_eq!(logged, (1..=300).collect::<Vec<i64>>(), "ids are positions: no gaps");
    for reader in &readers {
        assert!(reader.until_chat(300, Duration::from_secs(5)).await);
        assert_eq!(reader.chat_ids(), logged, "every node's readers see the log's one order");
    }
    // Each sender's own messages kept their order.
    let texts: Vec<String> =
        readers[1].events("chat message").iter().map(|m| m["message"].as_str().unwrap().to_owned()).collect();
    for i in 0..3 {
        let own: Vec<&String> = texts.iter().filter(|t| t.starts_with(&format!("{i}-"))).collect();
        assert_eq!(own, (0..100).map(|k| format!("{i}-{k}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn since_on_another_node_returns_exactly_what_was_missed() {
    let (_db, nodes) = nodes(3, unlimited_chat).await;
    let reader = nodes[0].cookie("reader").await;
    let mut sender = Ws::open(&nodes[1].base, &nodes[1].cookie("sender").await).await;
    let mut ws = Ws::open(&nodes[0].base, &reader).await;
    ws.until("chat history").await;
    for i in 0..10 {
        sender.chat(&format!("before {i}")).await;
    }
    let mut last = 0;
    while last < 10 {
        last = ws.until("chat message").await["id"].as_i64().unwrap();
    }
    drop(ws);
    for i in 0..7 {
        sender.chat(&format!("missed {i}")).await;
    }
    let mut seen = 0;
    while seen < 17 {
        seen = sender.until("chat message").await["id"].as_i64().unwrap();
    }
    let mut back = connect(&nodes[2].base, Some(&reader), "?since=10", &[]).await.unwrap();
    let history = back.until("chat history").await;
    let texts: Vec<&str> =
        history.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, (0..7).map(|i| format!("missed {i}")).collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn logout_on_one_node_closes_the_sessions_sockets_on_every_node() {
    let (_db, nodes) = nodes(3, |_| {}).await;
    let alice = nodes[0].cookie("alice").await;
    let alice_elsewhere = nodes[0].login_cookie("alice").await;
    let on_b = record(&nodes[1].base, &alice).await;
    let on_c = record(&nodes[2].base, &alice).await;
    let other_session = record(&nodes[2].base, &alice_elsewhere).await;
    // Every node has seen (and cached) the session.
    for node in &nodes[1..] {
        let res = node.bare_client().get(node.url("/profile")).header("cookie", &alice).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let started = tokio::time::Instant::now();
    let res =
        nodes[0].bare_client().post(nodes[0].url("/logout")).header("cookie", &alice).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(on_b.until_closed(Duration::from_secs(1)).await, Some(Some(4401)));
    assert_eq!(on_c.until_closed(Duration::from_secs(1)).await, Some(Some(4401)));
    assert!(started.elapsed() < Duration::from_secs(1), "closed within 1 s: {:?}", started.elapsed());
    // No node's cache keeps the ended session alive.
    for node in &nodes {
        let res = node.bare_client().get(node.url("/profile")).header("cookie", &alice).send().await.unwrap();
        assert_eq!(res.status(), 303, "refused on {}", node.base);
        assert_eq!(connect(&node.base, Some(&alice), "", &[]).await.err(), Some(401));
    }
    assert!(other_session.closed().is_none(), "the user's other session stays");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn per_user_limits_hold_across_the_cluster() {
    let (_db, nodes) = nodes(3, |c| {
        c.live.max_sockets_per_user = 5;
        c.live.chat_burst = 10;
        c.live.chat_rate = 0.01;
    })
    .await;
    let alice = nodes[0].cookie("alice").await;
    let mut tabs = Vec::new();
    for i in 0..5 {
        tabs.push(Ws::open(&nodes[i % 3].base, &alice).await);
    }
    for node in &nodes {
        assert_eq!(
            connect(&node.base, Some(&alice), "", &[]).await.err(),
            Some(429),
            "a sixth tab on {}",
            node.base
        );
    }
    // Five upgrades at once on three nodes for one last seat: one wins.
    let last = tabs.pop().unwrap();
    drop(last);
    let got_seat = eventually(Duration::from_secs(3), || async {
        let tries =
            futures_util::future::join_all(nodes.iter().map(|n| connect(&n.base, Some(&alice), "", &[])))
                .await;
        let won = tries.iter().filter(|t| t.is_ok()).count();
        assert!(won <= 1, "{won} upgrades took the last seat");
        won == 1
    });
    assert!(got_seat.await);

    // Ten messages in all, however the tabs are spread over the nodes.
    let (mut a, mut b) = (tabs.remove(0), tabs.remove(0));
    for i in 0..8 {
        a.chat(&format!("a{i}")).await;
        b.chat(&format!("b{i}")).await;
    }
    let seen = a.drain(Duration::from_millis(1500)).await;
    let delivered = seen.iter().filter(|(e, _)| e == "chat message").count();
    let refused = seen.iter().filter(|(e, d)| e == "error" && d["code"] == "rate_limited").count()
        + b.drain(Duration::from_millis(300))
            .await
            .iter()
            .filter(|(e, d)| e == "error" && d["code"] == "rate_limited")
            .count();
    assert_eq!((delivered, refused), (10, 6), "the burst is the user's, not each node's");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn a_killed_node_is_counted_out_and_every_message_seen_is_kept() {
    let (db, nodes) = nodes(2, |c| {
        short_ttl(c);
        unlimited_chat(c);
    })
    .await;
    let mut doomed = ProcessNode::start(
        &db.url(),
        &[("NODE_TTL", "3s"), ("CHAT_BURST", "1000000"), ("CHAT_RATE", "1000000")],
    )
    .await;
    let cookie = |name: &'static str| nodes[0].cookie(name);
    let (carol, erin, reader_d, sender_d) =
        (cookie("carol").await, cookie("erin").await, cookie("readerd").await, cookie("senderd").await);
    let w0 = record(&nodes[0].base, &cookie("watch0").await).await;
    let w1 = record(&nodes[1].base, &cookie("watch1").await).await;
    let _carol = (record(&doomed.base, &carol).await, record(&doomed.base, &carol).await);
    let _erin = (record(&doomed.base, &erin).await, record(&nodes[1].base, &erin).await);
    let rd = record(&doomed.base, &reader_d).await;
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Duration::from_millis(3);
    let sending = [
        keep_sending(Ws::open(&nodes[0].base, &cookie("sender0").await).await, "s0-", pause, stop.clone()),
        keep_sending(Ws::open(&nodes[1].base, &cookie("sender1").await).await, "s1-", pause, stop.clone()),
        keep_sending(Ws::open(&doomed.base, &sender_d).await, "sd-", pause, stop.clone()),
    ];
    for w in [&w0, &w1] {
        assert!(w.until_count(10, Duration::from_secs(3)).await, "{:?}", w.count());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    doomed.kill9();
    let killed = tokio::time::Instant::now();
    for w in [&w0, &w1] {
        assert!(
            w.until_count(5, Duration::from_secs(3 + 1)).await,
            "exact within NODE_TTL + 1 s: {:?}",
            w.count()
        );
    }
    let counted_out = killed.elapsed();
    for w in [&w0, &w1] {
        let told = eventually(Duration::from_secs(2), || async {
            ["carol", "readerd", "senderd"].iter().all(|u| w.announced(u, false) == 1)
        });
        assert!(told.await, "each of the dead node's users is announced as left");
    }
    stop.store(true, Ordering::Relaxed);
    for task in sending {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged = logged_ids(&db).await;
    for w in [&w0, &w1] {
        assert!(w.until_chat(*logged.last().unwrap(), Duration::from_secs(3)).await);
        assert_eq!(w.chat_ids(), logged, "every message anyone saw is stored, once, in order");
        assert_eq!(w.announced("erin", false), 0, "erin still has a tab on a live node");
        for u in ["carol", "readerd", "senderd"] {
            assert_eq!(w.announced(u, false), 1, "{u} announced as left once");
        }
    }
    let seen_on_dead = rd.chat_ids();
    assert!(
        seen_on_dead.iter().all(|id| logged.binary_search(id).is_ok()),
        "what the dead node's clients saw is kept"
    );
    eprintln!("killed node counted out after {counted_out:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn a_lost_listener_loses_and_duplicates_nothing() {
    let (db, nodes) = nodes(2, unlimited_chat).await;
    let reader = record(&nodes[0].base, &nodes[0].cookie("reader").await).await;
    let mut sender = Ws::open(&nodes[1].base, &nodes[1].cookie("sender").await).await;
    let listener = lobby::cluster::listener::listener_name(nodes[0].realtime.node_name().unwrap());
    let killer = {
        let db_url = db.url();
        tokio::spawn(async move {
            let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
            let mut terminated = 0;
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let killed: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&listener)
                .fetch_all(&pool)
                .await
                .unwrap();
                terminated += killed.len();
            }
            terminated
        })
    };
    for i in 0..400 {
        sender.chat(&format!("m{i}")).await;
        if i % 20 == 0 {
            sender.drain(Duration::from_millis(30)).await;
        }
    }
    assert!(killer.await.unwrap() >= 2, "the listener was really cut (and came back) several times");
    assert!(reader.until_chat(400, Duration::from_secs(5)).await);
    assert_eq!(reader.chat_ids(), (1..=400).collect::<Vec<i64>>(), "nothing lost, nothing twice");
    assert_eq!(logged_ids(&db).await.len(), 400);
}

#[tokio::test]
#[ignore = "needs PostgreSQL installed: starts and crashes its own with deploy/postgres.sh"]
async fn a_database_crash_counts_no_node_out_and_loses_nothing() {
    let postgres = OwnPostgres::start();
    let db = Arc::new(TestDb::fresh_postgres(&postgres.admin).await);
    let a = start(db.clone(), unlimited_chat).await;
    let b = start(db.clone(), unlimited_chat).await;
    let mut readers = Vec::new();
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        readers.push(record(&node.base, &node.cookie(&format!("reader{i}")).await).await);
    }
    let mut sender = Ws::open(&b.base, &b.cookie("sender").await).await;
    for reader in &readers {
        assert!(reader.until_count(5, Duration::from_secs(2)).await);
    }
    let sending = tokio::spawn(async move {
        let (mut sent, mut refused) = (0, 0);
        let until = tokio::time::Instant::now() + Duration::from_secs(6);
        while tokio::time::Instant::now() < until {
            sender.chat(&format!("m{sent}")).await;
            sent += 1;
            refused += sender
                .drain(Duration::from_millis(15))
                .await
                .iter()
                .filter(|(e, d)| e == "error" && d["code"] == "unavailable")
                .count();
        }
        sender.drain(Duration::from_millis(500)).await;
        (sent, refused, sender)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.crash_and_restart();
        postgres
    })
    .await
    .unwrap();
    let (sent, refused, _sender) = sending.await.unwrap();
    let logged = logged_ids(&db).await;
    assert_eq!(
        logged.len() + refused,
        sent,
        "each message stored once or refused ({sent} sent, {refused} refused)"
    );
    assert_eq!(logged, (1..=logged.len() as i64).collect::<Vec<_>>());
    for reader in &readers {
        assert!(reader.until_chat(*logged.last().unwrap(), Duration::from_secs(5)).await);
        assert_eq!(reader.chat_ids(), logged, "nothing lost, nothing twice");
        assert_eq!(reader.closed(), None, "no socket was closed");
        assert_eq!(reader.count(), Some(5));
        assert!(reader.events("user").iter().all(|u| u["connected"] == true), "nobody was counted out");
    }
    assert_eq!(db.scalar("SELECT count(*) FROM nodes").await, 2, "both nodes are still the first two");
    assert_eq!(db.scalar("SELECT max(id) FROM nodes").await, 2);
    drop(readers);
    a.stop().await;
    b.stop().await;
    drop(postgres);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn a_node_cut_off_from_the_database_fences_itself_and_comes_back() {
    let db = Arc::new(TestDb::postgres().await);
    // The node to cut off logs in as a role of its own, which can be locked out.
    let role = format!("lobby_cut_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN SUPERUSER")).execute(&pool).await.unwrap();
    let a = start(db.clone(), short_ttl).await;
    let cut_url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    let cut = start(db.clone(), |c| {
        short_ttl(c);
        c.database_url = lobby::config::DatabaseUrl::new(cut_url.clone());
    })
    .await;
    let watcher = record(&a.base, &a.cookie("watcher").await).await;
    let on_cut =
        [record(&cut.base, &a.cookie("uma").await).await, record(&cut.base, &a.cookie("vic").await).await];
    assert!(watcher.until_count(3, Duration::from_secs(2)).await);

    sqlx::query(&format!("ALTER ROLE {role} NOLOGIN")).execute(&pool).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(&role)
        .execute(&pool)
        .await
        .unwrap();
    for ws in &on_cut {
        assert_eq!(
            ws.until_closed(Duration::from_secs(5)).await,
            Some(Some(1001)),
            "the cut-off node closes its sockets"
        );
    }
    assert!(watcher.until_count(1, Duration::from_secs(5)).await, "and the others count it out");
    assert!(
        eventually(Duration::from_secs(2), || async {
            watcher.announced("uma", false) == 1 && watcher.announced("vic", false) == 1
        })
        .await
    );
    assert_eq!(
        connect(&cut.base, Some(&a.cookie("wes").await), "", &[]).await.err(),
        Some(503),
        "it admits nobody meanwhile"
    );

    sqlx::query(&format!("ALTER ROLE {role} LOGIN")).execute(&pool).await.unwrap();
    let uma = a.login_cookie("uma").await;
    let back = std::sync::Mutex::new(None);
    let admitted = eventually(Duration::from_secs(10), || async {
        let ws = connect(&cut.base, Some(&uma), "", &[]).await;
        let ok = ws.is_ok();
        *back.lock().unwrap() = ws.ok().map(Recorder::spawn);
        ok
    });
    assert!(admitted.await, "once the database answers again the node admits connections");
    assert!(watcher.until_count(2, Duration::from_secs(3)).await, "counted again: {:?}", watcher.count());
    drop(on_cut);
    cut.stop().await;
    a.stop().await;
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}")).execute(&pool).await.ok();
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn who_is_here_typing_and_read_markers_cross_nodes() {
    let (_db, nodes) = nodes(3, unlimited_chat).await;
    let (alice, bob, carol) =
        (nodes[0].cookie("alice").await, nodes[0].cookie("bob").await, nodes[0].cookie("carol").await);
    let mut alice_a = Ws::open(&nodes[0].base, &alice).await;
    alice_a.until("chat history").await;
    let bob_b = record(&nodes[1].base, &bob).await;
    let alice_c = record(&nodes[2].base, &alice).await;
    for ws in [&bob_b, &alice_c] {
        assert!(ws.until_count(3, Duration::from_secs(2)).await);
    }
    let mut carol_c = Ws::open(&nodes[2].base, &carol).await;
    assert_eq!(
        carol_c.until("online users").await,
        json!(["alice", "bob", "carol"]),
        "the cluster's users, on any node, herself too"
    );

    alice_a.emit("typing", serde_json::Value::Null).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            bob_b.events("typing") == vec![json!({"username": "alice", "room": 1})]
        })
        .await,
        "typing crosses nodes"
    );
    assert!(alice_c.events("typing").is_empty(), "but not to her own tab elsewhere");

    alice_a.chat("one").await;
    let id = alice_a.until("chat message").await["id"].as_i64().unwrap();
    alice_a.emit("read", json!(id)).await;
    let marker = eventually(Duration::from_secs(3), || async {
        alice_c.events("read marker").last() == Some(&json!({"lastRead": id, "room": 1}))
    });
    assert!(marker.await, "the marker reaches her tab on another node");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn a_ban_or_a_role_given_on_one_node_holds_on_every_node_at_once() {
    let (_db, nodes) = nodes(3, |_| {}).await;
    let alice = nodes[0].user("alice").await; // the first account: the admin
    let bob = nodes[0].cookie("bob").await;
    let bob_b = record(&nodes[1].base, &bob).await;
    let bob_c = record(&nodes[2].base, &bob).await;
    // Every node has seen (and cached) bob's session and account.
    for node in &nodes[1..] {
        let res = node.bare_client().get(node.url("/admin")).header("cookie", &bob).send().await.unwrap();
        assert_eq!(res.status(), 403, "not an admin yet, on {}", node.base);
    }
    let bob_id = nodes[0].scalar("SELECT id FROM users WHERE username = 'bob'").await.to_string();
    let admin_post = |path: &str| alice.post(nodes[0].url(path)).form(&[("user", bob_id.as_str())]).send();
    let give_role = |role: &'static str| {
        alice
            .post(nodes[0].url("/admin/users/role"))
            .form(&[("user", bob_id.as_str()), ("role", role)])
            .send()
    };

    // A role given on node A is the role on B and C for the next request.
    assert_eq!(give_role("admin").await.unwrap().status(), 303);
    for node in &nodes[1..] {
        let res = node.bare_client().get(node.url("/admin")).header("cookie", &bob).send().await.unwrap();
        assert_eq!(res.status(), 200, "an admin now, on {}", node.base);
    }
    assert_eq!(give_role("member").await.unwrap().status(), 303);

    // A ban on node A closes bob's sockets on B and C within a second.
    let started = tokio::time::Instant::now();
    assert_eq!(admin_post("/admin/users/ban").await.unwrap().status(), 303);
    assert_eq!(bob_b.until_closed(Duration::from_secs(1)).await, Some(Some(4403)));
    assert_eq!(bob_c.until_closed(Duration::from_secs(1)).await, Some(Some(4403)));
    assert!(started.elapsed() < Duration::from_secs(1), "closed within 1 s: {:?}", started.elapsed());
    for node in &nodes {
        let res = node.login(&node.bare_client(), "bob", "correct horse battery").await;
        assert_eq!(res.status(), 403, "suspended on {}", node.base);
    }

    // Lifted on node A: bob logs in on C straight away.
    assert_eq!(admin_post("/admin/users/unban").await.unwrap().status(), 303);
    let res = nodes[2].login(&nodes[2].bare_client(), "bob", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    let cookie = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    let mut again = Ws::open(&nodes[1].base, &cookie).await;
    again.until("chat history").await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES"]
async fn a_node_that_stops_leaves_the_cluster_before_its_pool_closes() {
    // A TTL far longer than the test: only the stopping node's own leave
    // can take its row and announce its users.
    let (db, mut nodes) = nodes(2, |c| c.live.node_ttl = Duration::from_secs(120)).await;
    let alice = nodes[1].cookie("alice").await;
    let watcher = record(&nodes[0].base, &nodes[0].cookie("dave").await).await;
    let tab = record(&nodes[1].base, &alice).await;
    assert!(watcher.until_count(2, Duration::from_secs(2)).await);
    assert_eq!(db.scalar("SELECT count(*) FROM nodes").await, 2);

    let leaving = nodes.pop().unwrap();
    leaving.stop().await;
    assert_eq!(tab.until_closed(Duration::from_secs(2)).await, Some(Some(1001)));
    // Once `stop` returned, the pool is closed: the leave came before.
    assert_eq!(db.scalar("SELECT count(*) FROM nodes").await, 1, "the stopped node left");
    assert_eq!(db.scalar("SELECT count(*) FROM presence").await, 1, "only dave's tab is left");
    assert!(eventually(Duration::from_secs(2), || async { watcher.announced("alice", false) == 1 }).await);
    assert!(watcher.until_count(1, Duration::from_secs(2)).await);
}
