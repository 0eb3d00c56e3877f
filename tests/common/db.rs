//! The database a test runs on: a fresh SQLite file, or, when
//! `LOBBY_TEST_POSTGRES` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), a fresh database on it,
//! dropped when the test ends. The same tests run on either engine; a test
//! of SQLite's own behaviour asks for `TestDb::sqlite()`, and one that needs
//! PostgreSQL is `#[ignore]`d and asks for `TestDb::postgres()`.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use tempfile::TempDir;

pub const POSTGRES_ENV: &str = "LOBBY_TEST_POSTGRES";

/// The PostgreSQL server tests may use, if any.
pub fn postgres_admin() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|url| !url.is_empty())
}

/// The PostgreSQL server a PostgreSQL-only test needs. Such a test is
/// `#[ignore]`d, so it runs only when asked for (`--include-ignored`, as
/// `.ci/run` does); asked for without a server, it fails, never passes.
pub fn require_postgres() -> String {
    postgres_admin().unwrap_or_else(|| {
        panic!(
            "this test needs PostgreSQL: set {POSTGRES_ENV} to an admin URL \
             (`deploy/postgres.sh start DIR PORT` starts one and prints it; .ci/run does)"
        )
    })
}

pub enum TestDb {
    Sqlite {
        dir: TempDir,
    },
    /// `files`: where the nodes on this database keep files (shared by all).
    Postgres {
        admin: String,
        name: String,
        url: String,
        files: TempDir,
    },
}

impl TestDb {
    /// A fresh, empty database on the engine the environment chose.
    pub async fn fresh() -> TestDb {
        match postgres_admin() {
            Some(admin) => Self::fresh_postgres(&admin).await,
            None => Self::sqlite(),
        }
    }

    /// A fresh SQLite database, whatever the environment chose: for tests of
    /// SQLite's own behaviour, which run (on SQLite) in either pass.
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite { dir: TempDir::new().unwrap() }
    }

    /// A fresh database on the PostgreSQL server the environment names;
    /// fails the test when there is none.
    pub async fn postgres() -> TestDb {
        Self::fresh_postgres(&require_postgres()).await
    }

    /// A fresh database on the given PostgreSQL server.
    pub async fn fresh_postgres(admin: &str) -> TestDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "lobby_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000
        );
        let mut conn = sqlx::PgConnection::connect(admin).await.expect("the PostgreSQL test server answers");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        TestDb::Postgres {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
            files: TempDir::new().unwrap(),
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { dir } => format!("sqlite://{}", dir.path().join("lobby.db").display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    /// Where the apps on this database keep files: `uploads/` beside the
    /// SQLite file (the default), or one folder every PostgreSQL node shares.
    pub fn files_dir(&self) -> std::path::PathBuf {
        match self {
            TestDb::Sqlite { dir } => dir.path().join("uploads"),
            TestDb::Postgres { files, .. } => files.path().to_owned(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// Where tower-sessions keeps the rows on this engine.
    pub fn sessions_table(&self) -> &'static str {
        if self.is_postgres() { "tower_sessions.session" } else { "tower_sessions" }
    }

    /// A connection pool of the test's own, on either engine.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url()).await.unwrap()
    }

    /// A statement that changes something (to set up a case a test needs).
    pub async fn execute(&self, sql: &str) {
        let pool = self.pool().await;
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// `SELECT count(*)`-like queries.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let pool = self.pool().await;
        let value = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        value
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin, name, .. } = self {
            let (admin, name) = (admin.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on:
            // a thread of its own with a runtime of its own drops the database.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}
