//! The server as an attacker or a careless client meets it: slow and silent
//! clients, lockouts, floods from one address, handshakes and frames that
//! break the rules, text that hides itself. Real sockets from outside;
//! different clients are different loopback source addresses (127.0.0.2, …).

mod common;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use common::{raw::*, ws::*, *};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const PASSWORD: &str = "correct horse battery";

/// A client whose requests come from `source` (a loopback address).
fn client_from(source: &str) -> reqwest::Client {
    let source: IpAddr = source.parse().unwrap();
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, name: &str, password: &str) -> StatusCode {
    let form = [("username", name), ("password", password)];
    client.post(app.url("/login")).form(&form).send().await.unwrap().status()
}

/// Reads until the server closes the connection; how long that took.
async fn until_closed_by_server(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_client_that_dribbles_or_never_sends_its_headers_is_disconnected() {
    let app = spawn_app_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let addr = app.addr;
    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Dribbling: a byte every 200 ms, never the end of the headers.
    let mut dribbler = TcpStream::connect(addr).await.unwrap();
    let dribbling = tokio::spawn(async move {
        let header = b"GET /profile HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in header {
            if dribbler.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until_closed_by_server(&mut dribbler, Duration::from_secs(5)).await
    });
    let closed = until_closed_by_server(&mut silent, Duration::from_secs(5)).await.expect("closed");
    assert!(closed < Duration::from_secs(3), "the silent one: {closed:?}");
    assert!(dribbling.await.unwrap().is_some(), "the dribbler lost its connection");
    // The server still serves.
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lives_until_the_idle_timeout() {
    let app = spawn_app_with(|c| {
        c.header_timeout = Duration::from_millis(500);
        c.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    tcp.write_all(request).await.unwrap();
    assert_eq!(read_head(&mut tcp).await.0, 200);
    let mut body = [0u8; 15];
    tcp.read_exact(&mut body).await.unwrap();
    // Idle for longer than the header timeout: still open, still served.
    tokio::time::sleep(Duration::from_secs(1)).await;
    tcp.write_all(request).await.unwrap();
    assert_eq!(read_head(&mut tcp).await.0, 200, "kept alive past the header timeout");
    tcp.read_exact(&mut body).await.unwrap();
    let closed = until_closed_by_server(&mut tcp, Duration::from_secs(5)).await.expect("closed when idle");
    assert!(closed >= Duration::from_millis(1500), "not before the idle timeout: {closed:?}");
}

#[tokio::test]
async fn sigterm_ends_the_process_within_ten_seconds_whatever_the_clients_do() {
    let db = TestDb::fresh().await;
    let scratch = tempfile::TempDir::new().unwrap();
    let port = common::nginx::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_lobby"))
        .env("DATABASE_URL", db.url())
        .env("STORAGE_URL", format!("file://{}", db.files_dir().display()))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("CHAT_BURST", "1000")
        .env("RUST_LOG", "error")
        .current_dir(scratch.path())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(20), || async {
        reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success())
    });
    assert!(up.await);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = client
        .post(format!("{base}/register"))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    // Holding on: a socket that sends but never reads, a request that never
    // finishes its headers, a request that never sends its body.
    let mut ws = Ws::open(&base, &cookie).await;
    for i in 0..50 {
        ws.chat(&format!("m{i}")).await;
    }
    let mut slow_headers = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow_headers.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut slow_body = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow_body
        .write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sent = Instant::now();
    // SAFETY: kill sends a signal to a process id; nothing of ours is touched.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let waited = tokio::task::spawn_blocking(move || {
        let status = server.wait().unwrap();
        (status, sent.elapsed())
    })
    .await
    .unwrap();
    assert!(waited.0.success(), "a clean exit: {:?}", waited.0);
    assert!(waited.1 < Duration::from_secs(10), "ended in {:?}", waited.1);
    // What was queued before the signal was committed.
    let stored = db.scalar("SELECT count(*) FROM messages").await;
    assert_eq!(stored, 50, "all 50 messages committed before the exit");
    drop((slow_headers, slow_body, ws));
}

#[tokio::test]
async fn failed_logins_from_elsewhere_never_lock_the_owner_out() {
    let app = spawn_app_with(|c| c.login_failure_burst = 5).await;
    app.user("alice").await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(login_from(&app, &attacker, "ALICE ", "wrong guess 1").await, StatusCode::UNAUTHORIZED);
    }
    let res = attacker
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the attacker is throttled");
    assert!(res.headers().contains_key("retry-after"));
    // The owner, from their own address, logs in at once, repeatedly.
    let owner = client_from("127.0.0.1");
    for _ in 0..3 {
        assert_eq!(login_from(&app, &owner, "alice", PASSWORD).await, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn one_address_cannot_make_the_server_hash_without_end() {
    let app = spawn_app_with(|c| c.auth_attempts_per_minute = 10).await;
    let flooder = client_from("127.0.0.3");
    for i in 0..10 {
        let status = login_from(&app, &flooder, &format!("nobody{i}"), "some password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let started = Instant::now();
    let res = flooder
        .post(app.url("/login"))
        .form(&[("username", "nobody99"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(started.elapsed() < Duration::from_millis(100), "refused before any hashing");
    let res = flooder
        .post(app.url("/register"))
        .form(&[("username", "newbie"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "registrations count too");
    // Another address is not affected.
    let other = client_from("127.0.0.4");
    assert_eq!(
        other
            .post(app.url("/register"))
            .form(&[("username", "newbie"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let app = spawn_app_with(|c| {
        c.auth_attempts_per_minute = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let proxy = client_from("127.0.0.1");
    let via_proxy = |client: &reqwest::Client, forwarded: &str| {
        client
            .post(app.url("/login"))
            .header("x-forwarded-for", forwarded.to_owned())
            .form(&[("username", "nobody"), ("password", "whatever")])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(via_proxy(&proxy, "203.0.113.7").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(via_proxy(&proxy, "203.0.113.7").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        via_proxy(&proxy, "203.0.113.8").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy"
    );
    // Not from a trusted proxy: the header is not believed.
    let stranger = client_from("127.0.0.5");
    for _ in 0..3 {
        assert_eq!(via_proxy(&stranger, "198.51.100.1").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        via_proxy(&stranger, "198.51.100.2").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "counted by its own address"
    );
}

#[tokio::test]
async fn one_account_cannot_fill_the_server_with_sockets() {
    let app = spawn_app_with(|c| c.live.max_sockets_per_user = 3).await;
    let alice = app.cookie("alice").await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(Ws::open(&app.base, &alice).await);
    }
    assert_eq!(connect(&app.base, Some(&alice), "", &[]).await.err(), Some(429));
    let bob = app.cookie("bob").await;
    assert!(connect(&app.base, Some(&bob), "", &[]).await.is_ok(), "others are not affected");
    drop(tabs.pop());
    assert!(
        eventually(Duration::from_secs(2), || async {
            connect(&app.base, Some(&alice), "", &[]).await.is_ok()
        })
        .await
    );
}

#[tokio::test]
async fn simultaneous_upgrades_cannot_pass_the_ceiling() {
    let app = spawn_app_with(|c| {
        c.live.max_connections = 5;
        c.live.max_sockets_per_user = 100;
    })
    .await;
    let alice = app.cookie("alice").await;
    let attempts =
        futures_util::future::join_all((0..20).map(|_| connect(&app.base, Some(&alice), "", &[]))).await;
    let opened = attempts.iter().filter(|a| a.is_ok()).count();
    assert_eq!(opened, 5, "{:?}", attempts.iter().map(|a| a.as_ref().err().copied()).collect::<Vec<_>>());
    assert!(attempts.iter().filter_map(|a| a.as_ref().err()).all(|status| *status == 503));
}

#[tokio::test]
async fn weak_passwords_and_look_alike_names_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let client = app.client();
    for (password, reason) in [
        ("password", "most common"),
        ("12345678", "most common"),
        ("alice123!", "must not contain your username"),
        ("éééé", "8 to 256 characters"),
    ] {
        let res = app.register(&client, "alice", password).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        assert!(res.text().await.unwrap().contains(reason), "{password}: {reason}");
    }
    assert_eq!(
        app.register(&client, "alice", "éééééééé").await.status(),
        StatusCode::SEE_OTHER,
        "8 characters"
    );
    for look_alike in ["aIice", "a1ice", "ALlCE"] {
        let res = app.register(&app.client(), look_alike, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "{look_alike}");
    }
}

#[tokio::test]
async fn an_idle_session_ends_but_an_open_socket_keeps_it() {
    let app = spawn_app_with(|c| {
        c.session_idle = Duration::from_secs(2);
        c.live.session_check_interval = Duration::from_millis(200);
    })
    .await;
    let idle = app.user("idle").await;
    let busy = app.cookie("busy").await;
    let mut socket = Ws::open(&app.base, &busy).await;
    socket.read_for(Duration::from_millis(3500)).await;
    assert_eq!(
        idle.get(app.url("/profile")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "idled out"
    );
    let res = app.bare_client().get(app.url("/profile")).header("cookie", &busy).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "kept alive by its socket");
    assert!(
        res.headers().get("cache-control").is_some_and(|v| v == "no-store"),
        "a logged-in page is not stored"
    );
}

#[tokio::test]
async fn an_absolute_lifetime_ends_even_a_busy_session() {
    let app = spawn_app_with(|c| {
        c.session_lifetime = Duration::from_secs(2);
        c.live.session_check_interval = Duration::from_millis(200);
    })
    .await;
    let cookie = app.cookie("busy").await;
    let mut socket = Ws::open(&app.base, &cookie).await;
    assert_eq!(socket.until_closed(Duration::from_secs(5)).await, Some(4401));
}

#[tokio::test]
async fn another_site_cannot_log_anyone_out() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let logout = |fetch_site: &'static str| {
        app.bare_client()
            .get(app.url("/logout"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", fetch_site)
            .send()
    };
    assert_eq!(logout("cross-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(logout("same-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    let head = app.bare_client().head(app.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::FORBIDDEN);
    let profile = app.bare_client().get(app.url("/profile")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(profile.status(), StatusCode::OK, "still logged in");
    assert_eq!(logout("same-origin").await.unwrap().status(), StatusCode::SEE_OTHER, "our own link works");
    let profile = app.bare_client().get(app.url("/profile")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(profile.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_handshake_follows_rfc_6455() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let with = |line_from: &str, line_to: &str| handshake(&host, &cookie, "").replace(line_from, line_to);
    let cases = [
        (with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: "), 400, None),
        (with("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400, None),
        (with("dGhlIHNhbXBsZSBub25jZQ==", "not base64 at all!!!!!=="), 400, None),
        (
            with(
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n",
            ),
            400,
            None,
        ),
        (with(&format!("Host: {host}\r\n"), ""), 400, None),
        (
            with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            426,
            Some("sec-websocket-version: 13"),
        ),
        (with("HTTP/1.1", "HTTP/1.0"), 400, None),
        (with("Upgrade: websocket\r\n", ""), 426, Some("upgrade: websocket")),
        (with("GET /ws", "POST /ws"), 405, Some("allow: GET")),
    ];
    for (request, status, header) in cases {
        let (got, head) = common::raw::request(&app.base, &request).await;
        assert_eq!(got, status, "{request}\n→ {head}");
        if let Some(header) = header {
            assert!(head.to_ascii_lowercase().contains(&header.to_ascii_lowercase()), "{header} in {head}");
        }
    }
    let (ok, _) = common::raw::request(&app.base, &handshake(&host, &cookie, "")).await;
    assert_eq!(ok, 101);
}

#[tokio::test]
async fn protocol_errors_are_answered_with_a_close_frame() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let text = 0x81; // FIN + text
    let cases: Vec<(u8, Vec<u8>, bool, u16, &str)> = vec![
        (text, vec![0xff, 0xfe, 0xfd], true, 1007, "invalid UTF-8"),
        (text, b"{}".to_vec(), false, 1002, "an unmasked frame"),
        (0xc1, b"{}".to_vec(), true, 1002, "a reserved bit"),
        (0x83, b"x".to_vec(), true, 1002, "a reserved opcode"),
        (0x09, b"ping".to_vec(), true, 1002, "a fragmented ping"),
        (0x89, vec![b'p'; 126], true, 1002, "a ping over 125 bytes"),
        (0x88, 1004u16.to_be_bytes().to_vec(), true, 1002, "a reserved close code"),
        (0x88, vec![0x03, 0xe8, 0xff, 0xfe], true, 1007, "a close reason that is not UTF-8"),
    ];
    for (first, payload, masked, code, what) in cases {
        let mut socket = RawSocket::open(&app.base, &cookie).await;
        socket.frame(first, &payload, masked).await;
        assert_eq!(socket.close_code().await, Some(code), "{what}");
    }
}

#[tokio::test]
async fn chat_text_that_hides_or_disguises_itself_is_cleaned_or_refused() {
    let app = spawn_app().await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    alice.until("chat history").await;
    alice.chat("pay \u{202E}drocer\u{202C} now\u{0}\u{1b}[2J").await;
    let message = alice.until("chat message").await;
    assert_eq!(message["message"], "pay drocer now[2J");
    alice.chat("e\u{301}te\u{301}").await;
    assert_eq!(alice.until("chat message").await["message"], "\u{e9}t\u{e9}", "NFC");
    for invisible in ["\u{200B}\u{200B}\u{200B}", "\u{2066}\u{2069}", "\u{0}\u{7}"] {
        alice.chat(invisible).await;
        assert_eq!(alice.until("error").await["code"], "invalid_message", "{invisible:?}");
    }
}

#[tokio::test]
async fn session_rows_hold_nothing_a_password_could_be_tested_against() {
    let app = spawn_app().await;
    app.user("alice").await;
    let pool = app.db.pool().await;
    let table = app.db.sessions_table();
    let data: Vec<u8> =
        sqlx::query_scalar(&format!("SELECT data FROM {table}")).fetch_one(&pool).await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&pool).await.unwrap();
    assert!(!String::from_utf8_lossy(&data).contains("argon2"), "no PHC string in the session row");
    let digest = hash.rsplit('$').next().unwrap();
    assert!(!String::from_utf8_lossy(&data).contains(digest), "nor the hash's digest");
}

#[tokio::test]
async fn a_logout_during_an_upgrade_closes_that_socket_too() {
    let app = spawn_app().await;
    for round in 0..20 {
        let cookie = app.cookie(&format!("racer{round}")).await;
        let (socket, _) = tokio::join!(connect(&app.base, Some(&cookie), "", &[]), async {
            app.bare_client().post(app.url("/logout")).header("cookie", &cookie).send().await.unwrap()
        });
        if let Ok(mut socket) = socket {
            // Whichever won the race, the socket does not outlive the session.
            assert_eq!(socket.until_closed(Duration::from_secs(1)).await, Some(4401), "round {round}");
        }
    }
}

#[tokio::test]
async fn health_checks_cannot_queue_on_the_database() {
    // SQLite's write lock, held by another connection, on either pass.
    let app = spawn_sqlite_app_with(|c| c.database.busy_timeout = Duration::from_millis(300)).await;
    let pool = sqlx::SqlitePool::connect(&app.db.url()).await.unwrap();
    let lock = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        let res = reqwest::get(app.url("/healthz")).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "one probe for ten checks: {:?}",
        started.elapsed()
    );
    drop(lock);
}

#[tokio::test]
async fn error_pages_speak_our_words_not_the_parsers() {
    let app = spawn_app().await;
    let body = "username=a&username=b&password=x";
    let res = app
        .bare_client()
        .post(app.url("/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    let page = res.text().await.unwrap();
    assert!(page.contains("send each field once"), "{page}");
    for parser_words in ["deserialize", "duplicate field", "`username`"] {
        assert!(!page.contains(parser_words), "{parser_words} in {page}");
    }
    let res = app
        .bare_client()
        .post(app.url("/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("as a web form does"));
    let mut ws = Ws::open(&app.base, &app.cookie("alice").await).await;
    ws.send_text("{\"event\": 7}".into()).await;
    let error = ws.until("error").await;
    assert!(!error["message"].as_str().unwrap().contains("invalid type"), "{error}");
    let _ = json!(null);
}

/// Any form body at all (fields doubled, missing, empty, binary, huge,
/// wrongly encoded) gets an answer a person can read: never a 5xx.
#[tokio::test]
async fn no_form_body_gets_a_server_error() {
    use proptest::{
        strategy::{Strategy, ValueTree},
        test_runner::TestRunner,
    };
    let app = spawn_app_with(|c| c.auth_attempts_per_minute = 100_000).await;
    let mut runner = TestRunner::deterministic();
    let bodies = proptest::collection::vec(
        proptest::prop_oneof![
            "(username|password|next|x)=[^&]{0,40}",
            "[ -~]{0,60}",
            "username=%[0-9A-Fa-f]{0,2}",
            proptest::collection::vec(proptest::num::u8::ANY, 0..80)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
        1..6,
    )
    .prop_map(|parts| parts.join("&"));
    for _ in 0..150 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        for path in ["/register", "/login"] {
            let res = app
                .bare_client()
                .post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(!res.status().is_server_error(), "{path} {body:?} → {}", res.status());
        }
    }
}
