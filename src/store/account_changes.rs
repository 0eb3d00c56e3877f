//! Changes to an account that other sessions must hear of: roles and bans
//! (by an admin, or the command line) and a new (or first) password. Each is one
//! transaction that also ends the sessions it ends and announces its
//! [`Ending`] to every node; the ending is returned for this node to carry
//! out. Role and ban changes run exclusively ([`BeginExclusive`]), so "the
//! last admin stays one" holds when two race.

use tower_sessions::session::Id as SessionId;

use super::{
    BeginExclusive, Store, StoreError,
    authority::{Actor, Authority},
    on_engine,
};
use crate::{
    domain::{Ending, Reason, Role},
    notify::{Channel, Notify, ending_payloads},
};

/// Why a change to an account was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountChangeError {
    #[error("There is no such user.")]
    NotFound,
    /// Nobody changes their own role or ban state, even to what it is.
    #[error("You cannot do that to your own account.")]
    Yourself,
    /// The actor's session ended, or they are no longer an admin (or are
    /// banned), since their request began.
    #[error("You are no longer allowed to do that. Log in again.")]
    NotAllowed,
    #[error("That would leave no admin. Make someone else an admin first.")]
    LastAdmin,
    /// A first password for an account that has one by now.
    #[error("Your account has a password already: change it with your current one.")]
    HasPassword,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountChangeError {
    fn from(e: sqlx::Error) -> Self {
        AccountChangeError::Store(StoreError(e))
    }
}

/// Counts the admins who are not banned.
const ACTIVE_ADMINS: &str = "SELECT count(*) FROM users WHERE role = 'admin' AND banned_at IS NULL";

fn session_ids(ids: &[String]) -> Vec<SessionId> {
    ids.iter().filter_map(|id| id.parse().ok()).collect()
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Store {
    /// Makes the account an admin or a member; the last admin who is not
    /// banned cannot stop being one. `by` must still be an admin (or the
    /// command line), and not the account itself.
    pub async fn set_role(&self, user_id: i64, role: Role, by: Actor) -> Result<Ending, AccountChangeError> {
        if by.user() == Some(user_id) {
            return Err(AccountChangeError::Yourself);
        }
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            let current: Option<(String, Option<i64>)> =
                sqlx::query_as("SELECT role, banned_at FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((current, banned_at)) = current else { return Err(AccountChangeError::NotFound) };
            if role == Role::Member && Role::stored(&current) == Role::Admin && banned_at.is_none() {
                let admins: i64 = sqlx::query_scalar(ACTIVE_ADMINS).fetch_one(&mut *tx).await?;
                if admins <= 1 {
                    return Err(AccountChangeError::LastAdmin);
                }
            }
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let ending = Ending::account_changed(user_id);
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await?;
            Ok::<Ending, AccountChangeError>(ending)
        })
    }

    /// Bans the account: it can no longer log in, its sessions are deleted
    /// and every node is told (on a cluster), all in one transaction.
    /// Returns the ending, for this node to carry out. `by` must still be an
    /// admin; nobody bans themselves, nor the last admin.
    pub async fn ban(&self, user_id: i64, by: Actor) -> Result<Ending, AccountChangeError> {
        if by.user() == Some(user_id) {
            return Err(AccountChangeError::Yourself);
        }
        let end = format!(
            "DELETE FROM {} WHERE id IN (SELECT session_id FROM account_sessions WHERE user_id = $1) RETURNING id",
            self.session_table()
        );
        let now = now_secs();
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            let current: Option<(String, Option<i64>)> =
                sqlx::query_as("SELECT role, banned_at FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((role, banned_at)) = current else { return Err(AccountChangeError::NotFound) };
            if Role::stored(&role) == Role::Admin && banned_at.is_none() {
                let admins: i64 = sqlx::query_scalar(ACTIVE_ADMINS).fetch_one(&mut *tx).await?;
                if admins <= 1 {
                    return Err(AccountChangeError::LastAdmin);
                }
            }
            // A new session key too: a session the list does not know of
            // (one older than the list) stops matching the account.
            sqlx::query(
                "UPDATE users SET banned_at = coalesce(banned_at, $1), session_key = $2 WHERE id = $3",
            )
            .bind(now)
            .bind(crate::token::hex(16))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            let ended: Vec<String> = sqlx::query_scalar(&end).bind(user_id).fetch_all(&mut *tx).await?;
            let ending = Ending::user(Reason::Banned, user_id, session_ids(&ended), None);
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await?;
            Ok::<Ending, AccountChangeError>(ending)
        })
    }

    /// Lifts a ban: the account may log in again. `by` must still be an
    /// admin, and not the account itself.
    pub async fn unban(&self, user_id: i64, by: Actor) -> Result<Ending, AccountChangeError> {
        if by.user() == Some(user_id) {
            return Err(AccountChangeError::Yourself);
        }
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_admin(by).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            let changed = sqlx::query("UPDATE users SET banned_at = NULL WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(AccountChangeError::NotFound);
            }
            let ending = Ending::account_changed(user_id);
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await?;
            Ok(ending)
        })
    }

    /// Sets a new password and session key, and deletes every other session
    /// of the user (every node is told, on a cluster), in one transaction.
    /// `keep` is the session making the change, which must still be live.
    /// Returns the ending, for this node to carry out.
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep: SessionId,
    ) -> Result<Ending, AccountChangeError> {
        self.replace_password(user_id, password_hash, keep, false).await
    }

    /// The first password of an account that has none (one made through a
    /// provider): as [`change_password`](Self::change_password), refused if
    /// the account has a password by then (set meanwhile, in another tab).
    pub async fn set_first_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep: SessionId,
    ) -> Result<Ending, AccountChangeError> {
        self.replace_password(user_id, password_hash, keep, true).await
    }

    async fn replace_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep: SessionId,
        first: bool,
    ) -> Result<Ending, AccountChangeError> {
        let end = format!(
            "DELETE FROM {} WHERE id IN
                 (SELECT session_id FROM account_sessions WHERE user_id = $1 AND session_id <> $2)
             RETURNING id",
            self.session_table()
        );
        let set = if first {
            "UPDATE users SET password_hash = $1, session_key = $2 WHERE id = $3 AND password_hash IS NULL"
        } else {
            "UPDATE users SET password_hash = $1, session_key = $2 WHERE id = $3"
        };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_logged_in(Actor::User { user: user_id, session: keep }).await? {
                return Err(AccountChangeError::NotAllowed);
            }
            let changed = sqlx::query(set)
                .bind(password_hash)
                .bind(crate::token::hex(16))
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(if first {
                    AccountChangeError::HasPassword
                } else {
                    AccountChangeError::NotFound
                });
            }
            let ended: Vec<String> =
                sqlx::query_scalar(&end).bind(user_id).bind(keep.to_string()).fetch_all(&mut *tx).await?;
            let ending = Ending::user(Reason::Ended, user_id, session_ids(&ended), Some(keep));
            tx.notify(Channel::Revoke, &ending_payloads(&ending)).await?;
            tx.commit().await?;
            Ok(ending)
        })
    }
}
