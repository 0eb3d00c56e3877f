//! Sessions live in the same database as everything else: tower-sessions-sqlx-store's
//! store for the engine, behind one type so the session layer need not know which.
//!
//! On PostgreSQL a deleted session is also announced to every node, in the
//! deleting transaction: once the row is gone, each node closes its sockets
//! of that session and forgets any cached copy (see `realtime::revocation`).

use sqlx::PgPool;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, ExpiredDeletion, Result},
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{Store, cluster::REVOKE_CHANNEL};
use crate::realtime::protocol::close;

#[derive(Debug, Clone)]
pub enum DatabaseSessions {
    /// The `tower_sessions` table.
    Sqlite(SqliteStore),
    /// The `tower_sessions.session` table (the store's default place).
    Postgres(PostgresStore, PgPool),
}

impl DatabaseSessions {
    pub fn on(store: &Store) -> Self {
        match store {
            Store::Sqlite(pool) => Self::Sqlite(SqliteStore::new(pool.clone())),
            Store::Postgres(pool) => Self::Postgres(PostgresStore::new(pool.clone()), pool.clone()),
        }
    }
}

/// The payload of a revocation notification: the close code, then the ids.
pub fn revocation_payload(code: u16, sessions: &[Id]) -> String {
    let mut payload = code.to_string();
    for id in sessions {
        payload.push(' ');
        payload.push_str(&id.to_string());
    }
    payload
}

macro_rules! on_store {
    ($sessions:expr, |$store:ident| $body:expr) => {
        match $sessions {
            DatabaseSessions::Sqlite($store) => $body,
            DatabaseSessions::Postgres($store, _) => $body,
        }
    };
}

#[async_trait::async_trait]
impl SessionStore for DatabaseSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        on_store!(self, |store| store.create(record).await)
    }
    async fn save(&self, record: &Record) -> Result<()> {
        on_store!(self, |store| store.save(record).await)
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        on_store!(self, |store| store.load(id).await)
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            DatabaseSessions::Sqlite(store) => store.delete(id).await,
            DatabaseSessions::Postgres(_, pool) => {
                delete_and_announce(pool, id).await.map_err(|e| Error::Backend(e.to_string()))
            }
        }
    }
}

async fn delete_and_announce(pool: &PgPool, id: &Id) -> std::result::Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM tower_sessions.session WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(REVOKE_CHANNEL)
        .bind(revocation_payload(close::SESSION_ENDED, &[*id]))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[async_trait::async_trait]
impl ExpiredDeletion for DatabaseSessions {
    async fn delete_expired(&self) -> Result<()> {
        on_store!(self, |store| store.delete_expired().await)
    }
}
