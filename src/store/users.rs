//! Accounts: creating them (under the registration mode) and finding them.
//! Roles, bans and passwords are changed in `account_changes`.
//!
//! Creating runs in an exclusive transaction ([`BeginExclusive`]), so "the
//! first account is the admin" and "an invite makes one account" hold when
//! two registrations race.

use super::{BeginExclusive, Store, StoreError, Unique, admission, on_engine, violates};
use crate::domain::{RegistrationMode, Role, User, Username};

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    Taken,
    #[error("registration is closed")]
    Closed,
    #[error("registration needs an invite")]
    InviteNeeded,
    #[error("the invite is unknown, used, revoked or expired")]
    InviteInvalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateUserError {
    fn from(e: sqlx::Error) -> Self {
        CreateUserError::Store(StoreError(e))
    }
}

/// An account as the admin page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    role: String,
    /// Unix seconds.
    pub created_at: i64,
    pub banned_at: Option<i64>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        Role::stored(&self.role)
    }
}

/// Names, without regard to case, and by look (see `Username::skeleton`).
const NAME: Unique = Unique { index: "users_username_key", sqlite_column: None };
const LOOK: Unique = Unique { index: "users_skeleton_key", sqlite_column: Some("users.skeleton") };

const USER: &str = "SELECT id, username, password_hash, session_key, role, banned_at FROM users";

/// A `users` row, as [`USER`] reads it.
#[derive(sqlx::FromRow)]
struct UserRecord {
    id: i64,
    username: String,
    password_hash: String,
    session_key: String,
    role: String,
    banned_at: Option<i64>,
}

impl From<UserRecord> for User {
    fn from(row: UserRecord) -> Self {
        User {
            id: row.id,
            username: row.username,
            role: Role::stored(&row.role),
            banned_at: row.banned_at,
            password_hash: row.password_hash,
            session_key: row.session_key,
        }
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Store {
    /// Creates the account, if the registration mode lets it: `mode` is the
    /// configured one, which a mode an admin stored overrides. While no
    /// account exists, anyone may register, and the first account is the
    /// admin. With an invite (its token's hash), the invite is used up by the
    /// same transaction. Two racing registrations of one name (or of two
    /// names that look alike) are settled by the unique indexes: exactly one
    /// insert wins, the other is `Taken`, and its invite stays unused.
    pub async fn create_user(
        &self,
        name: &Username,
        password_hash: &str,
        mode: RegistrationMode,
        invite: Option<&str>,
    ) -> Result<User, CreateUserError> {
        let now = now_secs();
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            let first: bool =
                sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users)").fetch_one(&mut *tx).await?;
            let stored: Option<String> = sqlx::query_scalar(admission::MODE)
                .bind(admission::MODE_KEY)
                .fetch_optional(&mut *tx)
                .await?;
            let mode = stored.and_then(|m| m.parse().ok()).unwrap_or(mode);
            let invite_id: Option<i64> = match (first, mode, invite) {
                (true, _, _) | (false, RegistrationMode::Open, _) => None,
                (false, RegistrationMode::Closed, _) => return Err(CreateUserError::Closed),
                (false, RegistrationMode::Invite, None) => return Err(CreateUserError::InviteNeeded),
                (false, RegistrationMode::Invite, Some(hash)) => Some(
                    sqlx::query_scalar(admission::USABLE_INVITE)
                        .bind(hash)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(CreateUserError::InviteInvalid)?,
                ),
            };
            let role = if first { Role::Admin } else { Role::Member };
            let created: Result<UserRecord, sqlx::Error> = sqlx::query_as(
                "INSERT INTO users (username, skeleton, password_hash, session_key, created_at, role)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING id, username, password_hash, session_key, role, banned_at",
            )
            .bind(name.as_str())
            .bind(name.skeleton())
            .bind(password_hash)
            .bind(crate::token::hex(16))
            .bind(now)
            .bind(role.as_str())
            .fetch_one(&mut *tx)
            .await;
            let user = User::from(created.map_err(|e| {
                if violates(&e, &NAME) || violates(&e, &LOOK) {
                    CreateUserError::Taken
                } else {
                    CreateUserError::from(e)
                }
            })?);
            // Every account is in the lobby.
            sqlx::query("UPDATE rooms SET members = members + 1 WHERE id = 1").execute(&mut *tx).await?;
            if let Some(invite) = invite_id {
                sqlx::query("UPDATE invites SET used_by = $1, used_at = $2 WHERE id = $3")
                    .bind(user.id)
                    .bind(now)
                    .bind(invite)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(user)
        })
    }

    /// The account with this name, in any case.
    pub async fn user_named(&self, name: &Username) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER} WHERE lower(username) = lower($1)");
        let row: Option<UserRecord> =
            on_engine!(self, |pool| sqlx::query_as(&sql).bind(name.as_str()).fetch_optional(pool).await)?;
        Ok(row.map(User::from))
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER} WHERE id = $1");
        let row: Option<UserRecord> =
            on_engine!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(User::from))
    }

    /// Every account, oldest first, for the admin page.
    pub async fn all_users(&self) -> Result<Vec<UserRow>, StoreError> {
        const ALL: &str = "SELECT id, username, role, created_at, banned_at FROM users ORDER BY id";
        Ok(on_engine!(self, |pool| sqlx::query_as(ALL).fetch_all(pool).await)?)
    }

    /// The id of the account with this name (for the command line).
    pub async fn user_id_named(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM users WHERE lower(username) = lower($1)")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?)
    }
}
