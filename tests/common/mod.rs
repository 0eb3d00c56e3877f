//! Starts the real app on 127.0.0.1:0 with a fresh database (SQLite, or
//! PostgreSQL when `LOBBY_TEST_POSTGRES` is set: see `db`), and gives tests
//! a real HTTP client with a cookie jar.
#![allow(dead_code)] // each test binary uses its own part of these helpers

pub mod cluster;
pub mod db;
pub mod github;
pub mod images;
pub mod nginx;
pub mod oidc;
pub mod process;
pub mod push_service;
pub mod raw;
pub mod rooms;
pub mod s3;
pub mod source;
pub mod ws;

use std::{net::SocketAddr, sync::Arc, time::Duration};

pub use db::TestDb;
use lobby::{Application, Config, config::DatabaseUrl, realtime::Realtime};
use reqwest::{StatusCode, header};
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// The node's live half, to look inside it (connections here, …).
    pub realtime: Realtime,
    /// Where `/metrics` is served, when the config asked for it.
    pub metrics: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    // Kept alive so the database outlives the app; dropped with the test.
    pub db: Arc<TestDb>,
}

/// The settings every test starts from: port 0, the test's database.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::defaults();
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.database_url = DatabaseUrl::new(db.url());
    config.public_url = None;
    // PostgreSQL has no default store: every node on the database shares one folder.
    if db.is_postgres() {
        config.files.storage_url = Some(format!("file://{}", db.files_dir().display()));
    }
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    start(Arc::new(TestDb::fresh().await), tweak).await
}

/// An app on a fresh SQLite database whatever the environment chose, for
/// tests of SQLite's own behaviour (a held write lock, a full disk, …).
pub async fn spawn_sqlite_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    start(Arc::new(TestDb::sqlite()), tweak).await
}

/// Starts an app on `db` (used to restart on the same database, or to run
/// several nodes on one).
pub async fn start(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        lobby::telemetry::init();
    }
    let mut config = test_config(&db);
    tweak(&mut config);
    let app = Application::build(config).await.expect("the app starts");
    let addr = app.local_addr();
    let realtime = app.realtime().clone();
    let metrics = app.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        realtime,
        metrics,
        stop: Some(stop),
        task: Some(task),
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects so
    /// tests see the 303s themselves.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A client that sends `cookie` ("name=value") with every request.
    pub fn client_with(&self, cookie: &str) -> reqwest::Client {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::COOKIE, header::HeaderValue::from_str(cookie).unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A client with no cookie jar, for sending hand-made cookies.
    pub fn bare_client(&self) -> reqwest::Client {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    pub async fn register(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/register"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, client: &reqwest::Client, username: &str, password: &str) -> reqwest::Response {
        client
            .post(self.url("/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Registers `username` with a fresh client and returns it, logged in.
    pub async fn user(&self, username: &str) -> reqwest::Client {
        let client = self.client();
        let res = self.register(&client, username, "correct horse battery").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "registering {username}");
        client
    }

    /// Registers `username` and returns the session cookie ("name=value").
    pub async fn cookie(&self, username: &str) -> String {
        let res = self.register(&self.bare_client(), username, "correct horse battery").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "registering {username}");
        format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap())
    }

    /// Logs `username` in again: a second, separate session.
    pub async fn login_cookie(&self, username: &str) -> String {
        let res = self.login(&self.bare_client(), username, "correct horse battery").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "logging in {username}");
        format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap())
    }

    /// A `SELECT count(*)`-like query on the app's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.db.scalar(sql).await
    }

    /// Session rows in the database.
    pub async fn sessions_stored(&self) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {}", self.db.sessions_table())).await
    }

    /// Stops the app and waits for it to finish.
    pub async fn stop(mut self) -> Arc<TestDb> {
        self.shutdown().await;
        self.db.clone()
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the app stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The value of our session cookie in a response's Set-Cookie headers.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    set_cookie_header(res).and_then(|h| {
        let first = h.split(';').next()?;
        let (name, value) = first.split_once('=')?;
        (name.trim() == lobby::web::SESSION_COOKIE).then(|| value.to_owned())
    })
}

pub fn set_cookie_header(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(lobby::web::SESSION_COOKIE))
        .map(str::to_owned)
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
