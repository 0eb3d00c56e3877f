//! The sessions' rows: tower-sessions' records (in the tables, and the
//! MessagePack encoding, that tower-sessions-sqlx-store used, so sessions
//! of earlier releases stay valid), with the listing of logged-in ones
//! (`account_sessions`) written in the same transaction.
//!
//! Saving a session *updates* its row and never recreates it: a request
//! still in flight when its session is ended (logout, a ban) must not bring
//! the session back by saving it at its end. Deleting sessions announces the
//! ending to every node in the deleting transaction (`notify`).

use time::OffsetDateTime;
use tower_sessions::session::Id;

use super::{
    AccountChangeError, BeginExclusive, Store, StoreError,
    account_sessions::NOTE,
    authority::{Actor, Authority},
    on_engine,
};
use crate::{
    domain::{Ending, Reason},
    notify::{Channel, Notify, ending_payloads},
};

pub use super::account_sessions::SessionMeta;

/// A session as stored: its id, its encoded record, when it ends, and (for
/// a logged-in one) its listing.
pub struct SessionRow<'a> {
    pub id: &'a Id,
    pub data: &'a [u8],
    pub expiry: OffsetDateTime,
    pub listing: Option<&'a SessionMeta>,
}

/// Writes a logged-in session's listing in the transaction `$tx` that
/// writes `$row` (a statement for each engine, so a macro rather than a fn).
macro_rules! note {
    ($tx:ident, $row:ident) => {
        if let Some(listing) = $row.listing {
            sqlx::query(NOTE)
                .bind($row.id.to_string())
                .bind(listing.user_id)
                .bind(&listing.handle)
                .bind(listing.login_at)
                .bind(listing.seen_at)
                .bind(&listing.agent)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

impl Store {
    /// Where the sessions are, on this engine.
    pub(super) fn session_table(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "tower_sessions",
            Store::Postgres(_) => "tower_sessions.session",
        }
    }

    /// Writes a new session; false if its id is taken (pick another).
    pub async fn create_session(&self, row: &SessionRow<'_>) -> Result<bool, StoreError> {
        let sql = format!("INSERT INTO {} (id, data, expiry_date) VALUES ($1, $2, $3)", self.session_table());
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(&sql)
                .bind(row.id.to_string())
                .bind(row.data)
                .bind(row.expiry)
                .execute(&mut *tx)
                .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
                other => other?,
            };
            note!(tx, row);
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        })?)
    }

    /// Writes a session that exists; a session that no longer does (it was
    /// ended meanwhile) is not written back: false.
    pub async fn update_session(&self, row: &SessionRow<'_>) -> Result<bool, StoreError> {
        let sql = format!("UPDATE {} SET data = $2, expiry_date = $3 WHERE id = $1", self.session_table());
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(&sql)
                .bind(row.id.to_string())
                .bind(row.data)
                .bind(row.expiry)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            note!(tx, row);
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        })?)
    }

    /// The encoded record of a session that has not expired.
    pub async fn load_session(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = format!("SELECT data FROM {} WHERE id = $1 AND expiry_date > $2", self.session_table());
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar(&sql)
                .bind(id.to_string())
                .bind(OffsetDateTime::now_utc())
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The encoded records of those of `ids` that have not expired, with
    /// their ids: one query for many, as the sweep of sockets' sessions
    /// asks (one each was a query per open socket every sweep).
    pub async fn load_sessions(&self, ids: &[Id]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let table = self.session_table();
        let ids: Vec<String> = ids.iter().map(Id::to_string).collect();
        let now = OffsetDateTime::now_utc();
        Ok(match self {
            Store::Sqlite(pool) => {
                let sql = format!(
                    "SELECT id, data FROM {table} WHERE id IN (SELECT value FROM json_each($1)) AND expiry_date > $2"
                );
                let ids = serde_json::to_string(&ids).unwrap_or_default();
                sqlx::query_as(&sql).bind(ids).bind(now).fetch_all(pool).await?
            }
            Store::Postgres(pool) => {
                let sql = format!("SELECT id, data FROM {table} WHERE id = ANY($1) AND expiry_date > $2");
                sqlx::query_as(&sql).bind(ids).bind(now).fetch_all(pool).await?
            }
        })
    }

    /// Deletes one session and tells every node (one transaction); returns
    /// the ending, for this node to carry out.
    pub async fn delete_session(&self, id: &Id, reason: Reason) -> Result<Ending, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.session_table());
        let ending = Ending::sessions(reason, &[*id]);
        on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql).bind(id.to_string()).execute(&mut *tx).await?;
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await
        })?;
        Ok(ending)
    }

    /// Deletes one of `by`'s other sessions (from the account page): only
    /// while `by` is still logged in; tells every node; returns the ending.
    pub async fn end_session_by(&self, id: &Id, by: Actor) -> Result<Ending, AccountChangeError> {
        let Actor::User { user, .. } = by else { return Err(AccountChangeError::NotAllowed) };
        let sql = format!(
            "DELETE FROM {} WHERE id = $1 AND id IN (SELECT session_id FROM account_sessions WHERE user_id = $2)",
            self.session_table()
        );
        let ending = Ending::sessions(Reason::Ended, &[*id]);
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_logged_in(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            sqlx::query(&sql).bind(id.to_string()).bind(user).execute(&mut *tx).await?;
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await?;
            Ok::<(), AccountChangeError>(())
        })?;
        Ok(ending)
    }

    /// Deletes the sessions that have expired (nobody can use them).
    pub async fn delete_expired_sessions(&self) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE expiry_date < $1", self.session_table());
        on_engine!(self, |pool| {
            sqlx::query(&sql).bind(OffsetDateTime::now_utc()).execute(pool).await.map(drop)
        })?;
        Ok(())
    }

    /// Tells every node of an ending, outside any other change.
    pub async fn announce(&self, ending: &Ending) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.notify(Channel::Revoke, &ending_payloads(ending)).await?;
            tx.commit().await
        })?;
        Ok(())
    }
}
