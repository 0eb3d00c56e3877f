//! Sessions live in the same database as everything else: tower-sessions-sqlx-store's
//! store for the engine, behind one type so the session layer need not know which.
//!
//! On top of the library's store:
//!
//! - A logged-in session also gets a row in `account_sessions` (whose it is,
//!   a handle, the browser, when it was last seen), written when the session
//!   is, so the account page can list a user's sessions and end one. The row
//!   goes with the session's (a foreign key, on delete cascade).
//! - On PostgreSQL a deleted session is announced to every node, in the
//!   deleting transaction: once the row is gone, each node closes its
//!   sockets of that session and forgets any cached copy (see
//!   `realtime::revocation`). Endings of all of a user's sessions (a ban, a
//!   password change) are announced the same way, as an [`Ending`].

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use sqlx::{Postgres, Sqlite, Transaction};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, ExpiredDeletion, Result},
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{
    Store, StoreError,
    account_sessions::SessionMeta,
    cluster::{MAX_PAYLOAD, REVOKE_CHANNEL},
};
use crate::realtime::protocol::close;

#[derive(Debug, Clone)]
pub struct DatabaseSessions {
    engine: Engine,
    store: Store,
    /// Sessions whose id is being replaced (a password change keeps the
    /// session under a new id): their sockets are told to reconnect, not
    /// that the session ended.
    renewing: Arc<Mutex<HashSet<Id>>>,
}

#[derive(Debug, Clone)]
enum Engine {
    /// The `tower_sessions` table.
    Sqlite(SqliteStore),
    /// The `tower_sessions.session` table (the store's default place).
    Postgres(PostgresStore),
}

impl DatabaseSessions {
    pub fn on(store: &Store) -> Self {
        let engine = match store {
            Store::Sqlite(pool) => Engine::Sqlite(SqliteStore::new(pool.clone())),
            Store::Postgres(pool) => Engine::Postgres(PostgresStore::new(pool.clone())),
        };
        Self { engine, store: store.clone(), renewing: Arc::default() }
    }

    /// The session `id` is about to get a new id (and so be deleted under
    /// the old one): its sockets reconnect rather than leave.
    pub fn renewing(&self, id: Id) {
        self.renewing.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    fn was_renewing(&self, id: &Id) -> bool {
        self.renewing.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Keeps the session's `account_sessions` row in step (a logged-in session only).
    async fn note(&self, record: &Record) -> Result<()> {
        match SessionMeta::of(record) {
            Some(meta) => self.store.note_session(&record.id, &meta).await.map_err(backend),
            None => Ok(()),
        }
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// Sessions ended all at once, as every node is told of it: close these
/// sockets with `code` (0: close nothing, the user's account changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub code: u16,
    /// These sessions…
    pub sessions: Vec<Id>,
    /// …or every session of this user…
    pub user: Option<i64>,
    /// …but this one.
    pub except: Option<Id>,
}

impl Ending {
    pub fn sessions(code: u16, sessions: &[Id]) -> Self {
        Self { code, sessions: sessions.to_vec(), user: None, except: None }
    }

    pub fn user(code: u16, user: i64, except: Option<Id>) -> Self {
        Self { code, sessions: Vec::new(), user: Some(user), except }
    }

    /// The account changed (a role, a ban lifted): forget any copy of it.
    pub fn user_changed(user: i64) -> Self {
        Self::user(0, user, None)
    }

    /// "CODE [u=USER] [x=SESSION] SESSION…", in as many notifications as it
    /// takes: PostgreSQL refuses a payload of 8000 bytes or more, and a user
    /// banned with hundreds of sessions must still be banned. The first
    /// carries the user; each carries the code and some of the sessions.
    pub fn payloads(&self) -> Vec<String> {
        let mut first = self.code.to_string();
        if let Some(user) = self.user {
            first.push_str(&format!(" u={user}"));
        }
        if let Some(except) = self.except {
            first.push_str(&format!(" x={except}"));
        }
        let mut payloads = vec![first];
        for id in &self.sessions {
            let id = id.to_string();
            if payloads.last().is_some_and(|p| p.len() + 1 + id.len() > MAX_PAYLOAD) {
                payloads.push(self.code.to_string());
            }
            let payload = payloads.last_mut().expect("never empty");
            payload.push(' ');
            payload.push_str(&id);
        }
        payloads
    }

    pub fn parse(payload: &str) -> Option<Self> {
        let mut parts = payload.split_ascii_whitespace();
        let mut ending = Ending::sessions(parts.next()?.parse().ok()?, &[]);
        for part in parts {
            if let Some(user) = part.strip_prefix("u=") {
                ending.user = Some(user.parse().ok()?);
            } else if let Some(except) = part.strip_prefix("x=") {
                ending.except = Some(except.parse().ok()?);
            } else {
                ending.sessions.push(part.parse().ok()?);
            }
        }
        Some(ending)
    }
}

/// Tells every node of an [`Ending`], when the transaction commits (on
/// PostgreSQL; one SQLite server has no other node to tell).
pub(crate) trait TellNodes {
    fn tell_nodes(
        &mut self,
        ending: &Ending,
    ) -> impl std::future::Future<Output = std::result::Result<(), sqlx::Error>> + Send;
}

impl TellNodes for Transaction<'static, Sqlite> {
    async fn tell_nodes(&mut self, _: &Ending) -> std::result::Result<(), sqlx::Error> {
        Ok(())
    }
}

impl TellNodes for Transaction<'static, Postgres> {
    async fn tell_nodes(&mut self, ending: &Ending) -> std::result::Result<(), sqlx::Error> {
        for payload in ending.payloads() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOKE_CHANNEL)
                .bind(payload)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Where tower-sessions keeps the sessions, on this engine.
    pub(super) fn session_table(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "tower_sessions",
            Store::Postgres(_) => "tower_sessions.session",
        }
    }

    /// Tells every node of an ending now (outside any other change).
    pub async fn announce(&self, ending: &Ending) -> std::result::Result<(), StoreError> {
        if let Store::Postgres(pool) = self {
            let mut tx = pool.begin().await?;
            tx.tell_nodes(ending).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Deletes one session and, on a cluster, tells every node (one transaction).
    pub async fn delete_session(&self, id: &Id, code: u16) -> std::result::Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.session_table());
        let ending = Ending::sessions(code, &[*id]);
        super::on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql).bind(id.to_string()).execute(&mut *tx).await?;
            tx.tell_nodes(&ending).await?;
            tx.commit().await
        })?;
        Ok(())
    }
}

macro_rules! on_store {
    ($sessions:expr, |$store:ident| $body:expr) => {
        match &$sessions.engine {
            Engine::Sqlite($store) => $body,
            Engine::Postgres($store) => $body,
        }
    };
}

#[async_trait::async_trait]
impl SessionStore for DatabaseSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        on_store!(self, |store| store.create(record).await)?;
        self.note(record).await
    }
    async fn save(&self, record: &Record) -> Result<()> {
        on_store!(self, |store| store.save(record).await)?;
        self.note(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        on_store!(self, |store| store.load(id).await)
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        let code = if self.was_renewing(id) { close::SESSION_RENEWED } else { close::SESSION_ENDED };
        self.store.delete_session(id, code).await.map_err(backend)
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for DatabaseSessions {
    async fn delete_expired(&self) -> Result<()> {
        on_store!(self, |store| store.delete_expired().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_round_trip() {
        let ids = [Id::default(), Id::default()];
        for ending in [
            Ending::sessions(4401, &ids),
            Ending::user(4403, 17, None),
            Ending::user(4401, 17, Some(ids[0])),
            Ending::user_changed(5),
        ] {
            assert_eq!(ending.payloads().len(), 1);
            assert_eq!(Ending::parse(&ending.payloads()[0]), Some(ending));
        }
        assert_eq!(Ending::parse("4403"), Some(Ending::sessions(4403, &[])));
        assert_eq!(Ending::parse("x y"), None);
        assert_eq!(Ending::parse("4401 not-an-id"), None);
        assert_eq!(Ending::parse("4401 u=x"), None);
    }

    #[test]
    fn a_ban_of_many_sessions_goes_out_in_several_notifications() {
        let ids: Vec<Id> = (0..1000).map(|_| Id::default()).collect();
        let ending = Ending { sessions: ids.clone(), ..Ending::user(4403, 17, None) };
        let payloads = ending.payloads();
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let parsed: Vec<Ending> = payloads.iter().map(|p| Ending::parse(p).unwrap()).collect();
        assert_eq!(parsed[0].user, Some(17));
        assert!(parsed.iter().all(|e| e.code == 4403));
        let sessions: Vec<Id> = parsed.into_iter().flat_map(|e| e.sessions).collect();
        assert_eq!(sessions, ids);
    }
}
