//! The second security review's rules ([hardening2] in the protocol), each
//! tried from outside with real clients: sockets that dribble bytes, other
//! client addresses as other loopback source addresses (127.0.0.2, …), a
//! server with a low open-file limit. On SQLite, and on PostgreSQL when
//! `LOBBY_TEST_POSTGRES` is set.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{process, raw::*, source, *};
use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const PASSWORD: &str = "correct horse battery";

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers().get("retry-after")?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn every_429_says_when_to_retry() {
    let app = spawn_app_with(|c| {
        c.login_failure_burst = 2;
        c.live.max_sockets_per_user = 1;
    })
    .await;
    let alice = app.user("alice").await;
    let guess = [("current", "not my password"), ("new", "a brand new secret")];
    for _ in 0..2 {
        let res = post(&alice, app.url("/account/password"), &guess).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = post(&alice, app.url("/account/password"), &guess).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the password-change throttle");
    assert!(retry_after(&res).is_some_and(|secs| secs >= 1), "{:?}", res.headers());

    // One socket too many for the user.
    let cookie = app.cookie("bob").await;
    let _tab = common::ws::Ws::open(&app.base, &cookie).await;
    let host = app.base.trim_start_matches("http://");
    let (status, head) = request(&app.base, &handshake(host, &cookie, "")).await;
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("\r\nretry-after: "), "{head}");
}

#[tokio::test]
async fn in_closed_mode_an_invite_link_says_registration_is_closed_and_shows_no_form() {
    let app = spawn_app().await;
    let admin = app.user("alice").await;
    let res = post(&admin, app.url("/admin/invites"), &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let token = page.split("/join/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let join = app.url(&format!("/join/{token}"));
    let res = app.client().get(&join).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a valid invite shows the form");
    assert!(res.text().await.unwrap().contains(r#"action="/register""#));

    let res = post(&admin, app.url("/admin/registration"), &[("mode", "closed")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app.client().get(&join).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = res.text().await.unwrap();
    assert!(page.contains("Registration is closed"), "{page}");
    assert!(!page.contains(r#"action="/register""#) && !page.contains(&token), "no form, no token: {page}");
}

/// Where `needle` is among the SQLite database's files (the file itself and
/// its write-ahead log).
fn files_holding(db: &TestDb, needle: &str) -> Vec<String> {
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    [path.clone(), format!("{path}-wal"), format!("{path}-journal")]
        .into_iter()
        .filter(|file| {
            std::fs::read(file).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

#[tokio::test]
async fn the_text_of_deleted_and_edited_messages_is_gone_from_the_sqlite_files() {
    // secure_delete and the WAL are SQLite's: on SQLite whatever the pass.
    let app = spawn_sqlite_app_with(|_| {}).await;
    let mut alice = common::ws::Ws::open(&app.base, &app.cookie("alice").await).await;
    alice.until("chat history").await;
    let deleted = "the launch code is 7741-QUOKKA-delete-me";
    let edited = "my home address is 12 Wombat Lane, edit-me";
    alice.chat(deleted).await;
    let first = alice.until("chat message").await["id"].clone();
    alice.chat(edited).await;
    let second = alice.until("chat message").await["id"].clone();
    alice.chat("an ordinary message that stays").await;
    alice.until("chat message").await;
    assert!(!files_holding(&app.db, deleted).is_empty(), "the test reads the right files");

    alice.emit("delete message", serde_json::json!({ "id": first })).await;
    alice.until("message deleted").await;
    alice.emit("edit message", serde_json::json!({ "id": second, "message": "nothing to see" })).await;
    alice.until("message edited").await;
    // The server checkpoints after each delete and edit.
    let gone = eventually(Duration::from_secs(5), || async {
        files_holding(&app.db, deleted).is_empty() && files_holding(&app.db, edited).is_empty()
    });
    assert!(
        gone.await,
        "deleted text in {:?}, edited text in {:?}",
        files_holding(&app.db, deleted),
        files_holding(&app.db, edited)
    );
    assert!(!files_holding(&app.db, "an ordinary message that stays").is_empty());
}

#[tokio::test]
async fn the_origin_check_compares_scheme_host_and_port() {
    let app = spawn_app().await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let form = [("username", "mallory"), ("password", PASSWORD)];
    for (i, (origin, why)) in [
        (format!("https://{host}"), "our host and port, another scheme"),
        (format!("http://{}:1", app.addr.ip()), "our host, another port"),
        ("http://evil.example".to_owned(), "another host"),
    ]
    .into_iter()
    .enumerate()
    {
        let res = app.client().post(app.url("/register")).header("origin", origin).form(&form).send().await;
        assert_eq!(res.unwrap().status(), StatusCode::FORBIDDEN, "{why}");
        let cookie = app.cookie(&format!("tab{i}")).await;
        let extra = format!("Origin: https://{host}\r\n");
        assert_eq!(request(&app.base, &handshake(&host, &cookie, &extra)).await.0, 403, "upgrade");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE username = 'mallory'").await, 0);
    // Our own origin, and the origin of the Host a request was sent to.
    let ours = app.client().post(app.url("/register")).header("origin", app.base.clone()).form(&form);
    assert_eq!(ours.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let login = [("username", "mallory"), ("password", PASSWORD)];
    let by_host = app
        .client()
        .post(app.url("/login"))
        .header("host", format!("localhost:{}", app.addr.port()))
        .header("origin", format!("http://localhost:{}", app.addr.port()))
        .form(&login);
    assert_eq!(by_host.send().await.unwrap().status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn with_a_public_url_requests_for_another_host_get_421_and_change_nothing() {
    let app = spawn_app_with(|c| {
        c.public_url = Some("http://chat.example.com".parse().unwrap());
        c.allowed_hosts = vec!["alt.example:8443".parse().unwrap(), "intranet".parse().unwrap()];
    })
    .await;
    let client = app.bare_client();
    let get = |path: &str, host: &str| client.get(app.url(path)).header("host", host.to_owned()).send();
    for ours in ["chat.example.com", "CHAT.example.com:80", "alt.example:8443", "intranet:3000"] {
        assert_eq!(get("/", ours).await.unwrap().status(), StatusCode::OK, "{ours}");
    }
    let listen = app.addr.to_string();
    let others =
        [listen.as_str(), "evil.example", "chat.example.com:8080", "alt.example", "chat.example.com.evil"];
    for other in others {
        let res = get("/", other).await.unwrap();
        assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST, "{other}");
        assert!(res.text().await.unwrap().contains("does not answer for that host name"));
        assert_eq!(
            get("/healthz", other).await.unwrap().status(),
            StatusCode::OK,
            "/healthz answers {other}"
        );
    }

    // Through a rebound name, not even the first admin can be registered.
    let form = [("username", "alice"), ("password", PASSWORD)];
    let res = client.post(app.url("/register")).header("host", "evil.example").form(&form).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(set_cookie_header(&res).is_none(), "no session was made");
    assert_eq!(app.scalar("SELECT count(*) FROM users").await, 0);
    assert_eq!(app.sessions_stored().await, 0);

    // Nor does a logged-in session's logout or upgrade through it do anything.
    let res = client.post(app.url("/register")).header("host", "chat.example.com").form(&form).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    let with_cookie = |path: &str, host: &str| {
        client.get(app.url(path)).header("host", host.to_owned()).header("cookie", &cookie).send()
    };
    assert_eq!(with_cookie("/logout", "evil.example").await.unwrap().status(), 421);
    assert_eq!(with_cookie("/profile", "chat.example.com").await.unwrap().status(), StatusCode::OK);
    let upgrade = handshake("evil.example", &cookie, "");
    assert_eq!(request(&app.base, &upgrade).await.0, 421);
    assert_eq!(request(&app.base, &handshake("chat.example.com", &cookie, "")).await.0, 101);
    // An absolute URI names the host, whatever `Host` says.
    let absolute = "GET http://evil.example/ HTTP/1.1\r\nHost: chat.example.com\r\n\r\n";
    assert_eq!(request(&app.base, absolute).await.0, 421);
    let absolute = "GET http://chat.example.com/ HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    assert_eq!(request(&app.base, absolute).await.0, 200);
}

/// Reads until the server closes the connection; how long that took
/// (`None`: still open after `within`).
async fn until_closed_by_server(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + within).into(), tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Writes `bytes` one at a time, `every` apart, until they are all sent or
/// the server closes the connection; then reads what the server said until
/// it closed (`None`: still open `linger` after the last byte).
async fn dribble(mut tcp: TcpStream, bytes: Vec<u8>, every: Duration, linger: Duration) -> DribbleEnd {
    let started = Instant::now();
    let (mut read, mut write) = tcp.split();
    let reading = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return (answer, started.elapsed()),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    let writing = async {
        for byte in bytes {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        tokio::time::sleep(linger).await;
    };
    tokio::select! {
        (answer, closed_after) = reading => DribbleEnd {
            answer: String::from_utf8_lossy(&answer).into_owned(),
            closed_after: Some(closed_after),
        },
        () = writing => DribbleEnd { answer: String::new(), closed_after: None },
    }
}

#[derive(Debug)]
struct DribbleEnd {
    /// What the server sent.
    answer: String,
    /// When the server closed the connection, from the first byte.
    closed_after: Option<Duration>,
}

#[tokio::test]
async fn the_metrics_listener_has_the_same_header_deadline() {
    let app = spawn_app_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        c.header_timeout = Duration::from_secs(1);
    })
    .await;
    let metrics = app.metrics.expect("metrics are served");
    let res = reqwest::get(format!("http://{metrics}/metrics")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a scrape is served");

    let mut silent = TcpStream::connect(metrics).await.unwrap();
    let header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
    let tcp = TcpStream::connect(metrics).await.unwrap();
    let dribbler = tokio::spawn(dribble(tcp, header, Duration::from_millis(100), Duration::from_secs(3)));
    let closed = until_closed_by_server(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some_and(|after| after < Duration::from_secs(3)), "the silent one: {closed:?}");
    let end = dribbler.await.unwrap();
    let closed = end.closed_after.expect("the dribbler lost its connection");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(3), "{end:?}");
    assert!(!end.answer.contains("200 OK"), "{end:?}");
}

/// The head of a form POST to /login whose body is `length` bytes.
fn login_head(length: usize) -> String {
    format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// A login form of exactly `length` bytes (a long wrong password).
fn login_body(length: usize) -> Vec<u8> {
    let mut body = b"username=nobody&password=".to_vec();
    body.resize(length, b'x');
    body
}

#[tokio::test]
async fn a_body_must_arrive_within_the_body_timeout_or_keep_the_minimum_pace() {
    let app = spawn_app_with(|c| {
        c.body_timeout = Duration::from_secs(1);
        c.min_body_rate = lobby::config::ByteRate(100);
    })
    .await;
    let slow = Duration::from_millis(100);

    // Ten bytes a second, below the minimum: 408 at the timeout, and closed.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(login_head(100).as_bytes()).await.unwrap();
    let end = dribble(tcp, login_body(100), slow, Duration::from_secs(3)).await;
    assert!(end.answer.starts_with("HTTP/1.1 408"), "{end:?}");
    assert!(end.answer.to_ascii_lowercase().contains("connection: close"), "{end:?}");
    let closed = end.closed_after.expect("the connection was closed");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(3), "{end:?}");

    // Headers, then nothing: the same.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(login_head(100).as_bytes()).await.unwrap();
    let end = dribble(tcp, Vec::new(), slow, Duration::from_secs(3)).await;
    assert!(end.answer.starts_with("HTTP/1.1 408"), "{end:?}");
    assert!(end.closed_after.is_some_and(|after| after < Duration::from_secs(3)), "{end:?}");

    // Past the timeout at twice the minimum pace: the whole body arrives and is answered.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let body = login_body(400);
    tcp.write_all(login_head(body.len()).as_bytes()).await.unwrap();
    let started = Instant::now();
    for chunk in body.chunks(20) {
        tcp.write_all(chunk).await.unwrap();
        tokio::time::sleep(slow).await;
    }
    let (status, head) = read_head(&mut tcp).await;
    assert_eq!(status, 401, "the login's own answer: {head}");
    assert!(started.elapsed() > Duration::from_millis(1500), "it went on past the timeout");

    // The server still serves.
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), StatusCode::OK);
}

/// What a flood of dribbling connections from one address met.
#[derive(Default)]
struct FloodCounts {
    /// Connections made.
    opened: AtomicUsize,
    /// Connections the server closed within half a second, before any answer.
    closed_at_once: AtomicUsize,
}

/// Keeps one connection from `source` dribbling a request's headers, a byte
/// a second, for ever: when the server closes it, it connects again at the
/// next second, as an attacker would.
async fn dribble_for_ever(source: &'static str, addr: std::net::SocketAddr, counts: Arc<FloodCounts>) {
    let header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Dribble: ";
    loop {
        let Some(mut tcp) = source::tcp_from(source, addr).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let mut bytes = header.iter().copied().chain(std::iter::repeat(b'a'));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if tcp.write_all(&[bytes.next().unwrap_or(b'a')]).await.is_err() {
                        break;
                    }
                }
                read = tcp.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
        if opened.elapsed() < Duration::from_millis(500) {
            counts.closed_at_once.fetch_add(1, Ordering::Relaxed);
        }
        tick.tick().await;
    }
}

#[tokio::test]
async fn one_address_dribbling_on_hundreds_of_connections_cannot_keep_others_out() {
    let db = TestDb::fresh().await;
    // The open-file limit of the review: 256 for the whole process.
    let server = process::Server::start(&db, &[], Some(256)).await;
    let password = [("username", "alice"), ("password", PASSWORD)];
    let owner = source::client_from("127.0.0.1");
    assert_eq!(post(&owner, server.url("/register"), &password).await.status(), StatusCode::SEE_OTHER);

    let counts = Arc::new(FloodCounts::default());
    let flood: Vec<_> =
        (0..260).map(|_| tokio::spawn(dribble_for_ever("127.0.0.2", server.addr, counts.clone()))).collect();
    let all_connected =
        eventually(Duration::from_secs(10), || async { counts.opened.load(Ordering::Relaxed) >= 260 });
    assert!(all_connected.await, "the flood is on");

    // For twelve seconds (past the header deadline, when the dribblers are
    // cut and connect again), others are served within a second.
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let round = Instant::now();
        let client = source::client_from("127.0.0.1");
        let health =
            tokio::time::timeout(Duration::from_secs(1), client.get(server.url("/healthz")).send()).await;
        let health = health.unwrap_or_else(|_| panic!("/healthz took over a second (round {rounds})"));
        assert_eq!(health.unwrap().status(), StatusCode::OK);
        let login =
            tokio::time::timeout(Duration::from_secs(1), post(&client, server.url("/login"), &password));
        let login = login.await.unwrap_or_else(|_| panic!("a login took over a second (round {rounds})"));
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        rounds += 1;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(round.elapsed())).await;
    }
    let refused = counts.closed_at_once.load(Ordering::Relaxed);
    assert!(refused >= 228, "the address's connections past 32 were closed at once ({refused})");
    for dribbler in flood {
        dribbler.abort();
    }
}

/// Sends `GET /healthz` on `tcp` and reads the answer; its status.
async fn health_on(tcp: &mut TcpStream) -> u16 {
    if tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.is_err() {
        return 0;
    }
    let (status, head) = read_head(tcp).await;
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if tcp.read_exact(&mut body).await.is_err() {
        return 0;
    }
    status
}

#[tokio::test]
async fn idle_keep_alives_and_open_websockets_do_not_count_against_their_address() {
    let app = spawn_app_with(|c| c.live.max_sockets_per_user = 40).await;
    assert!(40 > lobby::Config::defaults().max_pending_per_client, "more than the limit");
    // Forty kept-alive connections from one address, each answered, then idle.
    let mut idle = Vec::new();
    for _ in 0..40 {
        let mut tcp = source::tcp_from("127.0.0.3", app.addr).await.unwrap();
        assert_eq!(health_on(&mut tcp).await, 200);
        idle.push(tcp);
    }
    // New connections from that address are served…
    for i in 0..5 {
        let mut tcp = source::tcp_from("127.0.0.3", app.addr).await.unwrap();
        assert_eq!(health_on(&mut tcp).await, 200, "new connection {i}");
    }
    // …and so is each idle one's next request.
    for (i, tcp) in idle.iter_mut().enumerate() {
        assert_eq!(health_on(tcp).await, 200, "kept-alive connection {i}");
    }

    // Forty open WebSockets from another address.
    let cookie = app.cookie("alice").await;
    let mut tabs = Vec::new();
    for _ in 0..40 {
        let mut tab = source::ws_from("127.0.0.4", app.addr, &cookie).await;
        tab.until("chat history").await;
        tabs.push(tab);
    }
    assert_eq!(app.realtime.connections_here(), 40);
    for i in 0..5 {
        let mut tcp = source::tcp_from("127.0.0.4", app.addr).await.unwrap();
        assert_eq!(health_on(&mut tcp).await, 200, "a request beside the sockets ({i})");
    }
    let mut one_more = source::ws_from("127.0.0.4", app.addr, &app.cookie("bob").await).await;
    one_more.until("chat history").await;
}

/// Is `tcp` still open `after` its server had time to close it?
async fn still_open(tcp: &mut TcpStream, after: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(after, tcp.read(&mut byte)).await.is_err()
}

#[tokio::test]
async fn a_trusted_proxy_is_not_limited_as_one_client() {
    let app = spawn_app_with(|c| {
        c.max_pending_per_client = 2;
        c.trusted_proxies = vec!["127.0.0.5".parse().unwrap()];
    })
    .await;
    // A client: its third unfinished connection is closed at once.
    let mut client = Vec::new();
    for _ in 0..3 {
        client.push(source::tcp_from("127.0.0.6", app.addr).await.unwrap());
    }
    let wait = Duration::from_millis(300);
    assert!(still_open(&mut client[0], wait).await && still_open(&mut client[1], wait).await);
    assert!(!still_open(&mut client[2], wait).await, "the third from 127.0.0.6");
    // The proxy: as many as its clients need.
    let mut proxy = Vec::new();
    for _ in 0..6 {
        proxy.push(source::tcp_from("127.0.0.5", app.addr).await.unwrap());
    }
    for (i, tcp) in proxy.iter_mut().enumerate() {
        assert!(still_open(tcp, Duration::from_millis(50)).await, "proxy connection {i}");
    }
    for tcp in &mut proxy {
        assert_eq!(health_on(tcp).await, 200);
    }
}
