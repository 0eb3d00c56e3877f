//! Accounts.

use super::{Store, StoreError, on_engine, violates};
use crate::accounts::{User, Username};

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

const USER: &str = "SELECT id, username, password_hash FROM users";

impl Store {
    /// Creates the account. Two racing registrations of one name are settled
    /// by the unique index: exactly one insert wins, the other is `Taken`.
    pub async fn create_user(&self, name: &Username, password_hash: &str) -> Result<User, CreateUserError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let created = on_engine!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)
                 RETURNING id, username, password_hash",
            )
            .bind(name.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_one(pool)
            .await
        });
        created.map_err(|e| {
            if violates(&e, "users_username_key") { CreateUserError::Taken } else { StoreError(e).into() }
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
