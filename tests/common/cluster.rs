//! Several nodes on one PostgreSQL database: in this process (apps), or as
//! separate `lobby` processes (to be killed with SIGKILL), and a PostgreSQL
//! server of the test's own (to be crashed and restarted).

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use super::{TestApp, TestDb, eventually, start};
use lobby::Config;

/// `n` nodes on one fresh database on the test server (`LOBBY_TEST_POSTGRES`;
/// the test fails without it).
pub async fn nodes(n: usize, tweak: impl Fn(&mut Config)) -> (Arc<TestDb>, Vec<TestApp>) {
    let db = Arc::new(TestDb::postgres().await);
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(start(db.clone(), &tweak).await);
    }
    (db, apps)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A node as a process of its own: the release or debug `lobby` binary.
pub struct ProcessNode {
    child: Child,
    pub base: String,
    /// Where it keeps files, unless the test named a store.
    _files: tempfile::TempDir,
}

impl ProcessNode {
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> ProcessNode {
        let port = free_port();
        let files = tempfile::TempDir::new().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lobby"));
        command
            .env("DATABASE_URL", database_url)
            .env("STORAGE_URL", format!("file://{}", files.path().display()))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", std::env::var("TEST_LOG").map_or("error".into(), |_| "lobby=debug".to_owned()))
            .env("ARGON2_MEMORY_KIB", "1024")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if std::env::var_os("TEST_LOG").is_none() {
            command.stderr(Stdio::null());
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("the lobby binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/healthz");
        let up = eventually(Duration::from_secs(20), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(up, "the node process answers on {base}");
        ProcessNode { child, base, _files: files }
    }

    /// SIGKILL: no shutdown, no goodbye, its database connections just drop.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A PostgreSQL server of this test's own (`deploy/postgres.sh`), so it can
/// be crashed without disturbing other tests.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
    pub admin: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/postgres.sh")
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let dir = tempfile::Builder::new().prefix("lobby-pg-").tempdir().unwrap();
        // As root, the cluster belongs to the postgres user, who must reach it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let admin = Self::run(&dir.path().join("data").display().to_string(), port);
        OwnPostgres { dir, port, admin }
    }

    fn run(data: &str, port: u16) -> String {
        let out = Command::new("bash")
            .arg(script())
            .args(["start", data, &port.to_string()])
            .env("PG_FSYNC", "off")
            .output()
            .expect("bash runs deploy/postgres.sh");
        assert!(out.status.success(), "postgres.sh start: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Stops the server (fast shutdown: clients are cut off).
    pub fn stop(&self) {
        let out = Command::new("bash").arg(script()).args(["stop", &self.data()]).output().unwrap();
        assert!(out.status.success());
    }

    /// Starts it again, on the same port, with the same data.
    pub fn start_again(&self) {
        Self::run(&self.data(), self.port);
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Restarts as after a crash (`pg_ctl restart -m immediate`).
    pub fn crash_and_restart(&self) {
        let out = Command::new("bash").arg(script()).args(["crash", &self.data()]).output().unwrap();
        assert!(out.status.success(), "postgres.sh crash: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).args(["stop", &self.data()]).output();
    }
}
