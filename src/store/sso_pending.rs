//! Sign-ins on their way through a provider. Kept in the database, not in
//! the browser's session, so a callback that reaches another node than the
//! one the sign-in began on finds it at once (a node's session cache may
//! hold an older copy of the session for a few seconds). Each is taken
//! once: the statement that reads it deletes it.

use super::{Store, StoreError, on_engine};
use crate::domain::{PendingSignIn, Provider};

#[derive(sqlx::FromRow)]
struct PendingRecord {
    state_hash: String,
    session_hash: String,
    provider: String,
    login: String,
    next: Option<String>,
    invite_hash: Option<String>,
    link_user: Option<i64>,
    expires_at: i64,
}

impl Store {
    pub async fn save_pending_sign_in(&self, pending: &PendingSignIn) -> Result<(), StoreError> {
        const SAVE: &str = "INSERT INTO sso_pending
             (state_hash, session_hash, provider, login, next, invite_hash, link_user, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_engine!(self, |pool| {
            sqlx::query(SAVE)
                .bind(&pending.state_hash)
                .bind(&pending.session_hash)
                .bind(pending.provider.as_str())
                .bind(&pending.login)
                .bind(&pending.next)
                .bind(&pending.invite_hash)
                .bind(pending.link_user)
                .bind(pending.expires_at)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// Takes out the sign-in whose state hashes to `state_hash`: whoever
    /// asks first gets it, and nobody after (expired or not: the caller
    /// judges).
    pub async fn take_pending_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>, StoreError> {
        const TAKE: &str = "DELETE FROM sso_pending WHERE state_hash = $1
             RETURNING state_hash, session_hash, provider, login, next, invite_hash, link_user, expires_at";
        let row: Option<PendingRecord> =
            on_engine!(self, |pool| sqlx::query_as(TAKE).bind(state_hash).fetch_optional(pool).await)?;
        Ok(row.and_then(|row| {
            let provider: Provider = row.provider.parse().ok()?;
            Some(PendingSignIn {
                state_hash: row.state_hash,
                session_hash: row.session_hash,
                provider,
                login: row.login,
                next: row.next,
                invite_hash: row.invite_hash,
                link_user: row.link_user,
                expires_at: row.expires_at,
            })
        }))
    }

    /// Forgets sign-ins that expired before `now` (unix seconds): nobody
    /// can finish them.
    pub async fn delete_expired_sign_ins(&self, now: i64) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM sso_pending WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}
