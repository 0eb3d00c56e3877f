//! Accounts.

use super::{Store, StoreError, Unique, on_engine, violates};
use crate::accounts::{User, Username};

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Names, without regard to case, and by look (see `Username::skeleton`).
const NAME: Unique = Unique { index: "users_username_key", sqlite_column: None };
const LOOK: Unique = Unique { index: "users_skeleton_key", sqlite_column: Some("users.skeleton") };

const USER: &str = "SELECT id, username, password_hash, session_key FROM users";

impl Store {
    /// Creates the account. Two racing registrations of one name (or of two
    /// names that look alike) are settled by the unique indexes: exactly one
    /// insert wins, the other is `Taken`.
    pub async fn create_user(&self, name: &Username, password_hash: &str) -> Result<User, CreateUserError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let created = on_engine!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO users (username, skeleton, password_hash, session_key, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, username, password_hash, session_key",
            )
            .bind(name.as_str())
            .bind(name.skeleton())
            .bind(password_hash)
            .bind(crate::token::hex(16))
            .bind(now)
            .fetch_one(pool)
            .await
        });
        created.map_err(|e| {
            if violates(&e, &NAME) || violates(&e, &LOOK) {
                CreateUserError::Taken
            } else {
                StoreError(e).into()
            }
        })
    }

    /// The account with this name, in any case.
    pub async fn user_named(&self, name: &Username) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER} WHERE lower(username) = lower($1)");
        Ok(on_engine!(self, |pool| sqlx::query_as(&sql).bind(name.as_str()).fetch_optional(pool).await)?)
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER} WHERE id = $1");
        Ok(on_engine!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }
}
