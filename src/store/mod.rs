//! The storage seam. Every SQL statement Lobby runs is under this module, in
//! domain terms: callers ask for "the user named alice" or "the log after
//! position 41", never for a pool or a row. `DATABASE_URL`'s scheme picks the
//! engine once, at start.
//!
//! Most statements are written once and run on both engines ([`on_engine!`]):
//! `$N` placeholders, `RETURNING`, `ON CONFLICT` and `lower()` mean the same
//! on SQLite and PostgreSQL, and both keep times as unix integers. Where the
//! engines differ (taking the log's lock, notifications, the cluster's tables)
//! each engine's statements stand side by side in the same function.
//!
//! - `users`: creating and finding accounts (with a password, or through a provider).
//! - `identities`: identities at providers: the account each belongs to, linking, unlinking.
//! - `sso_pending`: sign-ins on their way through a provider, taken once.
//! - `account_changes`: roles, bans and passwords, with the sessions they end.
//! - `admission`: the registration mode and invites.
//! - `account_sessions`: which sessions each user has, for the account page.
//! - [`log`]: the chat log, appended in commit order.
//! - `messages`: the log read back: by position, and room by room for scrollback.
//! - `rooms`: rooms and memberships, whose changes ride the log.
//! - `search`: messages found by words and substrings, in the rooms a user may see.
//! - `search_index`: SQLite's search indexes behind the log: their cursor, indexing the next messages.
//! - `files`: files shared in rooms (their message's, in the log's
//!   transaction), unowned objects for the sweep, uploads per hour.
//! - `markers`: each user's read marker.
//! - `sessions`: the sessions' rows; saving updates, never recreates.
//! - `throttles`: token buckets for login attempts, shared by every node.
//! - [`push`]: Web Push: the VAPID keys, subscriptions, and the queue.
//! - [`cluster`]: PostgreSQL only: nodes, presence, announcements, notifications.

mod account_changes;
mod account_sessions;
mod admission;
mod authority;
pub mod cluster;
mod edits;
mod files;
mod identities;
pub mod log;
mod markers;
mod messages;
pub mod push;
mod rooms;
mod search;
mod search_index;
mod sessions;
mod sso_pending;
mod throttles;
mod users;

use std::{str::FromStr, time::Duration};

use sqlx::{
    Connection, PgPool, SqlitePool,
    migrate::MigrateError,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use account_changes::AccountChangeError;
pub use account_sessions::AccountSession;
pub use admission::{Invite, InviteState};
pub use authority::Actor;
pub use edits::{Change, ChangeError};
pub use files::{NewFile, StoredFile, UploadOutcome};
pub use identities::IdentityChangeError;
pub use log::{Batch, NewMessage, Outcome};
pub use messages::{LogChange, LogEntry, LogStart, Page};
pub use rooms::{RoomChange, RoomError, RoomEvent, RoomFacts, RoomLimits};
pub use search::{Hits, Scope};
pub use search_index::Backlog;
pub use sessions::{SessionMeta, SessionRow};
pub use users::{CreateUserError, IdentityAccount, UserRow};

use crate::config::{DatabaseTuning, DatabaseUrl, Synchronous};

/// Each engine's migrations are compiled into the binary; `sqlx migrate run
/// --source migrations/<engine>` applies the same folder with the same bookkeeping.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database, on whichever engine `DATABASE_URL` named. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One file, one server: the embedded default.
    Sqlite,
    /// One database, any number of nodes.
    Postgres,
}

impl Engine {
    /// The engine a URL's scheme names.
    pub fn of(url: &DatabaseUrl) -> Option<Engine> {
        let scheme = url.expose().split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Engine::Sqlite),
            "postgres" | "postgresql" => Some(Engine::Postgres),
            _ => None,
        }
    }
}

/// A statement that failed; the database is down, full or refused it.
#[derive(Debug, thiserror::Error)]
#[error("the database failed: {0}")]
pub struct StoreError(#[from] sqlx::Error);

impl StoreError {
    /// The database took longer than we wait for `what`.
    pub fn timed_out(what: &str) -> Self {
        StoreError(sqlx::Error::Protocol(format!("{what} took too long")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "DATABASE_URL {url} is not a database URL Lobby understands (expected sqlite://PATH or postgres://USER@HOST/DATABASE)"
    )]
    UnknownScheme { url: String },
    #[error("DATABASE_URL {url} is not a valid database URL: {source}")]
    BadUrl { url: String, source: sqlx::Error },
    #[error("could not open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("could not apply the migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Runs `$body` with `$pool` bound to this store's pool, whichever engine it
/// is: the body is compiled once per engine, so one statement serves both.
macro_rules! on_engine {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_engine;

/// A transaction that no other account-changing transaction runs beside:
/// registrations (the first account becomes the admin, an invite is used
/// once) and role and ban changes (the last admin stays). SQLite takes the
/// database's write lock at BEGIN; PostgreSQL an advisory lock of ours.
pub(crate) trait BeginExclusive {
    type Db: sqlx::Database;
    fn begin_exclusive(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginExclusive for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_exclusive(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The advisory lock that account changes hold (any constant of ours).
const ACCOUNTS_LOCK: i64 = 0x4c6f_6262_4163_6374; // "LobbAcct"

impl BeginExclusive for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_exclusive(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ACCOUNTS_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}

impl Store {
    /// Opens the pool. SQLite gets WAL (readers never block the writer), a
    /// busy timeout (writers queue instead of failing with "database is
    /// locked"), foreign keys, `secure_delete` (see [`Store::checkpoint`]),
    /// and the file is created if it does not exist.
    /// PostgreSQL connections get time limits, so no statement, lock wait or
    /// forgotten transaction can hold the database forever.
    ///
    /// On both, a connection that goes back to the pool still inside a
    /// transaction is closed instead of reused: a COMMIT that failed (a full
    /// disk) can leave sqlx counting a transaction the database already
    /// rolled back, and every later transaction on it would fail.
    pub async fn connect(url: &DatabaseUrl, tuning: &DatabaseTuning) -> Result<Store, DbError> {
        let bad_url = |source| DbError::BadUrl { url: url.to_string(), source };
        let failed = |source| DbError::Connect { url: url.to_string(), source };
        match Engine::of(url) {
            Some(Engine::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(bad_url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match tuning.sqlite_synchronous {
                        Synchronous::Normal => SqliteSynchronous::Normal,
                        Synchronous::Full => SqliteSynchronous::Full,
                    })
                    .busy_timeout(tuning.busy_timeout)
                    .foreign_keys(true)
                    // Freed space is zeroed, not left with its old bytes: the
                    // text of a deleted or edited message is gone from the file.
                    .pragma("secure_delete", "ON")
                    // SQLite's thread may run this many rows ahead of the
                    // reader before it waits (50 by default): a greeting's
                    // 500 rooms no longer stop it ten times on the way.
                    .row_buffer_size(1024);
                let pool = SqlitePoolOptions::new()
                    .max_connections(tuning.pool_size.max(1))
                    .acquire_timeout(tuning.acquire_timeout)
                    .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                    .connect_with(options)
                    .await
                    .map_err(failed)?;
                Ok(Store::Sqlite(pool))
            }
            Some(Engine::Postgres) => {
                let pool = PgPoolOptions::new()
                    .max_connections(tuning.pool_size.max(1))
                    .acquire_timeout(tuning.acquire_timeout)
                    .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                    .connect_with(postgres_options(url, tuning).map_err(bad_url)?)
                    .await
                    .map_err(failed)?;
                Ok(Store::Postgres(pool))
            }
            None => Err(DbError::UnknownScheme { url: url.to_string() }),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Store::Sqlite(_) => Engine::Sqlite,
            Store::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies this engine's migrations. On PostgreSQL the migrator holds an
    /// advisory lock, so nodes starting together migrate once.
    ///
    /// SQLite's run on a connection of their own, closed afterwards: the
    /// search migration sets its FTS5 tables' format version behind FTS5's
    /// back, which a connection that had them open would not see
    /// (migrations/sqlite/20261205300001_search.sql says why).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Store::Sqlite(pool) => {
                use sqlx::ConnectOptions;
                let mut conn = pool.connect_options().connect().await.map_err(MigrateError::Execute)?;
                SQLITE_MIGRATIONS.run(&mut conn).await?;
                conn.close().await.map_err(MigrateError::Execute)?;
            }
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// The pool's connections: (open, idle).
    pub fn pool_use(&self) -> (u32, usize) {
        on_engine!(self, |pool| (pool.size(), pool.num_idle()))
    }

    pub async fn close(&self) {
        on_engine!(self, |pool| pool.close().await)
    }

    /// SQLite: copies the write-ahead log into the database file and empties
    /// it (`wal_checkpoint(TRUNCATE)`), so the text of a message just deleted
    /// or edited is gone from the log too (`secure_delete` has already zeroed
    /// it in the pages the change rewrote). Call it after a delete or an
    /// edit commits. PostgreSQL: nothing to do. A checkpoint that cannot
    /// finish (a long reader, a full disk) is logged and left to the next
    /// one, or to SQLite's own, which runs as the log grows.
    pub async fn checkpoint(&self) {
        let Store::Sqlite(pool) = self else { return };
        // One row: (busy, pages in the log, pages checkpointed); busy = 1
        // when a reader or writer kept it from finishing.
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await {
            Ok((0, _, _)) => {}
            Ok((_, log, copied)) => {
                tracing::debug!(log, copied, "the checkpoint could not finish: another connection was busy");
            }
            Err(e) => tracing::warn!(error = %e, "could not checkpoint the SQLite log"),
        }
    }

    /// Can the database take a write right now? A real change is committed
    /// (SQLite skips an UPDATE that changes nothing): it needs the write lock
    /// (which another process may hold past the busy timeout), room in the
    /// log (which a full disk does not have), and, on PostgreSQL, a primary
    /// that answers (not a standby).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let now = log::now_millis();
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(PROBE).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                sqlx::query(PROBE).bind(now).execute(pool).await?;
            }
        }
        Ok(())
    }
}

const PROBE: &str = "UPDATE health_probe SET probed_at = $1 WHERE id = 1";

/// PostgreSQL session settings for every pooled connection: a statement that
/// runs, waits for a lock, or sits idle inside a transaction past these is
/// ended by the server, so a stuck node cannot hold the log's lock forever.
pub(crate) fn postgres_options(
    url: &DatabaseUrl,
    tuning: &DatabaseTuning,
) -> Result<PgConnectOptions, sqlx::Error> {
    let millis = |d: Duration| format!("{}", d.as_millis().max(1));
    Ok(PgConnectOptions::from_str(url.expose())?.application_name("lobby").options([
        ("statement_timeout", millis(tuning.statement_timeout)),
        ("lock_timeout", millis(tuning.busy_timeout)),
        ("idle_in_transaction_session_timeout", millis(tuning.statement_timeout * 2)),
    ]))
}

/// A unique index, as each engine names it when a statement breaks it:
/// PostgreSQL by the index's name; SQLite in its message, by the index's
/// name for an index on an expression and by `table.column` for a column.
struct Unique {
    index: &'static str,
    sqlite_column: Option<&'static str>,
}

/// Did the statement break this unique index (a name already taken)?
fn violates(err: &sqlx::Error, unique: &Unique) -> bool {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint() == Some(unique.index)
                || db.message().contains(unique.index)
                || unique.sqlite_column.is_some_and(|column| db.message().contains(column))
        }
        _ => false,
    }
}
