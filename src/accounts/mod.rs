//! Accounts: who a user is, how they prove it, and the axum-login backend
//! (passport-local's strategy + serializeUser/deserializeUser in one).

mod password;
mod throttle;
mod username;

use std::fmt;

use axum_login::{AuthUser, AuthnBackend};
use sqlx::FromRow;

pub use password::{HashError, Hasher, InvalidPassword, PASSWORD_CHARS, Password};
pub use throttle::{Throttled, Throttles};
pub use username::{InvalidUsername, USERNAME_RULE, Username};

use crate::store::{CreateUserError, Store, StoreError};

pub type AuthSession = axum_login::AuthSession<Accounts>;

#[derive(Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    password_hash: String,
    /// Random, replaced when the password changes: sessions carry it, so a
    /// password change ends them, and a session row reveals nothing that a
    /// guessed password could be tested against.
    session_key: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User").field("id", &self.id).field("username", &self.username).finish()
    }
}

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// Sessions carry this; when the password changes, every old session
    /// stops matching and is logged out.
    fn session_auth_hash(&self) -> &[u8] {
        self.session_key.as_bytes()
    }
}

/// What the login form submits.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error(transparent)]
    Hashing(#[from] HashError),
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("That username is taken, or looks too much like one that is. Choose another one.")]
    Taken,
    #[error(transparent)]
    Failed(#[from] AccountsError),
}

/// The account store over sqlx. axum-login clones the backend for every
/// request, so it is one `Arc` to clone.
#[derive(Clone)]
pub struct Accounts(std::sync::Arc<AccountsInner>);

pub struct AccountsInner {
    store: Store,
    hasher: Hasher,
    /// Users by id, for a few seconds: every request with a session asks.
    /// Entries change only at registration (new ids), so staleness is moot.
    recent: moka::future::Cache<i64, Option<User>>,
}

impl std::ops::Deref for Accounts {
    type Target = AccountsInner;
    fn deref(&self) -> &AccountsInner {
        &self.0
    }
}

impl Accounts {
    pub fn new(store: Store, hasher: Hasher, cache_ttl: std::time::Duration) -> Self {
        let recent = moka::future::Cache::builder().max_capacity(100_000).time_to_live(cache_ttl).build();
        Self(std::sync::Arc::new(AccountsInner { store, hasher, recent }))
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Creates the account. Two racing registrations of one name are settled
    /// by the unique index: exactly one wins, the other is `Taken`.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn register(&self, username: &Username, password: &Password) -> Result<User, RegisterError> {
        let password_hash = self.hasher.hash(password).await.map_err(AccountsError::from)?;
        self.store.create_user(username, &password_hash).await.map_err(|e| match e {
            CreateUserError::Taken => RegisterError::Taken,
            CreateUserError::Store(e) => AccountsError::from(e).into(),
        })
    }
}

/// A query error shared by every request that waited on the same query.
fn unshare(error: &std::sync::Arc<StoreError>) -> StoreError {
    StoreError::from(sqlx::Error::Protocol(error.to_string()))
}

impl AuthnBackend for Accounts {
    type User = User;
    type Credentials = Credentials;
    type Error = AccountsError;

    /// Unknown names go through the same argon2 work as known ones, so
    /// neither the words nor the time of the answer tell them apart.
    #[tracing::instrument(skip_all)]
    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, AccountsError> {
        let user = match Username::parse(&creds.username) {
            Ok(name) => self.store.user_named(&name).await?,
            Err(InvalidUsername) => None,
        };
        let phc = user.as_ref().map(|u| u.password_hash.as_str());
        let matches = self.hasher.verify(&creds.password, phc).await?;
        Ok(user.filter(|_| matches))
    }

    /// Concurrent requests for one user share one query (see `recent`).
    async fn get_user(&self, id: &i64) -> Result<Option<User>, AccountsError> {
        self.recent
            .try_get_with(*id, self.store.user(*id))
            .await
            .map_err(|e| AccountsError::Database(unshare(&e)))
    }
}
