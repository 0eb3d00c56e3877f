//! The database engine seam: pool type, connection settings, migrations and
//! the session store type all live here, so adding PostgreSQL means adding
//! to this module rather than touching every query.
//!
//! Queries elsewhere are runtime-checked (`sqlx::query_as` + `FromRow`) with
//! `$N` placeholders, which both SQLite and PostgreSQL accept, so a fresh
//! clone builds without a live database.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::{DatabaseTuning, DatabaseUrl, Synchronous};

pub type Pool = sqlx::SqlitePool;
pub type SessionStore = tower_sessions_sqlx_store::SqliteStore;

/// Migrations are compiled into the binary; `sqlx migrate run` reads the same folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "DATABASE_URL {url} is not a database URL this build understands (expected sqlite://PATH): {source}"
    )]
    BadUrl { url: String, source: sqlx::Error },
    #[error("could not open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("could not apply the migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens the pool. SQLite gets WAL (readers never block the writer),
/// a busy timeout (writers queue instead of failing with "database is
/// locked"), foreign keys, and the file is created if it does not exist.
pub async fn connect(url: &DatabaseUrl, tuning: &DatabaseTuning) -> Result<Pool, DbError> {
    let options = SqliteConnectOptions::from_str(url.expose())
        .map_err(|source| DbError::BadUrl { url: url.to_string(), source })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match tuning.sqlite_synchronous {
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
        })
        .busy_timeout(tuning.busy_timeout)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(tuning.pool_size.max(1))
        .acquire_timeout(tuning.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|source| DbError::Connect { url: url.to_string(), source })
}

pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// The session store the app uses: the database one behind a short-lived cache.
pub type Sessions = crate::session_cache::CachedSessions<SessionStore>;

pub fn session_store(pool: &Pool) -> SessionStore {
    SessionStore::new(pool.clone())
}

/// Is the database able to take a write right now? Taking the write lock and
/// releasing it writes nothing, but it fails when the file cannot be written
/// or another process holds the lock past the busy timeout: a chat server
/// that can only read is not healthy.
pub async fn check_writable(pool: &Pool) -> Result<(), sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await?.rollback().await
}

/// Did the statement fail on a unique constraint (a name already taken)?
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
