//! Who may register: the registration mode an admin chose, and invites.

use super::{
    AccountChangeError, BeginExclusive, Store, StoreError,
    authority::{Actor, Authority},
    on_engine,
};
use crate::domain::RegistrationMode;

/// The `settings` key of the registration mode.
pub(super) const MODE_KEY: &str = "registration";
pub(super) const MODE: &str = "SELECT value FROM settings WHERE key = $1";

/// An invite's id, if the hash is one that can be used now ($2: unix seconds).
pub(super) const USABLE_INVITE: &str = "SELECT id FROM invites
     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2";

/// An invite as the admin page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invite {
    pub id: i64,
    pub created_by: String,
    /// Unix seconds, all of them.
    pub created_at: i64,
    pub expires_at: i64,
    pub used_by: Option<String>,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    Usable,
    Used,
    Revoked,
    Expired,
}

impl Invite {
    pub fn state(&self, now: i64) -> InviteState {
        if self.used_at.is_some() {
            InviteState::Used
        } else if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.expires_at <= now {
            InviteState::Expired
        } else {
            InviteState::Usable
        }
    }
}

impl Store {
    /// The mode an admin chose, if one did.
    pub async fn stored_registration_mode(&self) -> Result<Option<RegistrationMode>, StoreError> {
        let stored: Option<String> =
            on_engine!(self, |pool| sqlx::query_scalar(MODE).bind(MODE_KEY).fetch_optional(pool).await)?;
        Ok(stored.and_then(|m| m.parse().ok()))
    }

    /// The mode in force: the one an admin chose, else `configured`; and
    /// open while no account exists, so the first one (the admin) can be made.
    pub async fn registration_mode(
        &self,
        configured: RegistrationMode,
    ) -> Result<RegistrationMode, StoreError> {
        let (any, stored): (bool, Option<String>) = on_engine!(self, |pool| {
            let any = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(pool).await?;
            let stored = sqlx::query_scalar(MODE).bind(MODE_KEY).fetch_optional(pool).await?;
            Ok::<_, sqlx::Error>((any, stored))
        })?;
        if !any {
            return Ok(RegistrationMode::Open);
        }
        Ok(stored.and_then(|m| m.parse().ok()).unwrap_or(configured))
    }

    /// Stores the mode an admin chose; from now on it wins over the
    /// configured one. `by` must still be an admin.
    pub async fn set_registration_mode(
        &self,
        mode: RegistrationMode,
        by: Actor,
    ) -> Result<(), AccountChangeError> {
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(MODE_KEY)
            .bind(mode.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores a new invite (the hash of its token), usable until
    /// `expires_at`. `by` must still be an admin.
    pub async fn create_invite(
        &self,
        token_hash: &str,
        by: Actor,
        now: i64,
        expires_at: i64,
    ) -> Result<(), AccountChangeError> {
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            sqlx::query("INSERT INTO invites (token_hash, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(by.user())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether an invite with this hash can be used at `now`; the hash found
    /// is handed back, to be compared in constant time.
    pub async fn usable_invite(&self, token_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar(
                "SELECT token_hash FROM invites
                 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Revokes an invite that has not been used; says whether one was.
    /// `by` must still be an admin.
    pub async fn revoke_invite(&self, id: i64, now: i64, by: Actor) -> Result<bool, AccountChangeError> {
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            let changed = sqlx::query(
                "UPDATE invites SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(changed > 0)
        })
    }

    /// The invites, newest first (the last 100).
    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        const LIST: &str = "SELECT i.id, c.username AS created_by, i.created_at, i.expires_at,
                                   u.username AS used_by, i.used_at, i.revoked_at
                            FROM invites i
                            JOIN users c ON c.id = i.created_by
                            LEFT JOIN users u ON u.id = i.used_by
                            ORDER BY i.id DESC LIMIT 100";
        Ok(on_engine!(self, |pool| sqlx::query_as(LIST).fetch_all(pool).await)?)
    }
}
