//! Accounts: who a user is, how they prove it, and the axum-login backend
//! (passport-local's strategy + serializeUser/deserializeUser in one).

mod admission;
mod password;
mod throttle;

use axum_login::{AuthUser, AuthnBackend};

pub use admission::{INVITE_LIFETIME, new_invite_token, plausible_token, token_hash, token_matches};
pub use password::{HashError, Hasher, InvalidPassword, PASSWORD_CHARS, Password};
pub use throttle::{Throttled, Throttles};

use crate::{
    domain::{IdentityKey, IdentityProfile, InvalidUsername, RegistrationMode, User, Username},
    store::{CreateUserError, IdentityAccount, Store, StoreError},
};

pub type AuthSession = axum_login::AuthSession<Accounts>;

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
    #[error("Registration is closed.")]
    Closed,
    #[error("Registration is by invitation only: open the invite link you were given.")]
    InviteNeeded,
    #[error("This invite link is not valid: it was used, revoked or has expired. Ask for a new one.")]
    InviteInvalid,
    /// No derived name was free (a thousand taken: never, in practice).
    #[error(
        "No free username could be made from the name the sign-in provider gave. Register with a name of your own."
    )]
    NoFreeName,
    #[error(transparent)]
    Failed(#[from] AccountsError),
}

impl RegisterError {
    fn of(e: CreateUserError) -> Self {
        match e {
            CreateUserError::Taken => RegisterError::Taken,
            CreateUserError::Closed => RegisterError::Closed,
            CreateUserError::InviteNeeded => RegisterError::InviteNeeded,
            CreateUserError::InviteInvalid => RegisterError::InviteInvalid,
            CreateUserError::Store(e) => AccountsError::from(e).into(),
        }
    }
}

/// How a sign-in through a provider went.
#[derive(Debug)]
pub enum ProviderSignIn {
    /// The identity's account: log it in.
    Returning(User),
    /// A new account, made for the identity: log it in.
    Registered(User),
    /// The identity's account is banned: nobody is logged in, and its
    /// logins are not counted.
    Suspended(User),
}

/// Users by id, for a few seconds: every request with a session asks. A
/// change to an account (a role, a ban, a password) forgets its entry, on
/// every node (it is one of `sessions::Endings`' parts).
#[derive(Clone)]
pub struct UserCache(moka::future::Cache<i64, Option<User>>);

impl UserCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self(moka::future::Cache::builder().max_capacity(100_000).time_to_live(ttl).build())
    }

    pub async fn forget(&self, user_id: i64) {
        self.0.invalidate(&user_id).await;
    }

    /// After a gap in the notifications: any account may have changed.
    pub fn forget_all(&self) {
        self.0.invalidate_all();
    }
}

/// An ending that names a user (a ban, a role, a password) forgets their account here.
#[async_trait::async_trait]
impl crate::sessions::OnEnding for UserCache {
    async fn ended(&self, ending: &crate::domain::Ending) {
        if let Some(user) = ending.user {
            self.forget(user).await;
        }
    }

    fn forget_all(&self) {
        UserCache::forget_all(self);
    }
}

/// The account store over sqlx. axum-login clones the backend for every
/// request, so it is one `Arc` to clone.
#[derive(Clone)]
pub struct Accounts(std::sync::Arc<AccountsInner>);

pub struct AccountsInner {
    store: Store,
    hasher: Hasher,
    recent: UserCache,
}

impl std::ops::Deref for Accounts {
    type Target = AccountsInner;
    fn deref(&self) -> &AccountsInner {
        &self.0
    }
}

impl Accounts {
    pub fn new(store: Store, hasher: Hasher, recent: UserCache) -> Self {
        Self(std::sync::Arc::new(AccountsInner { store, hasher, recent }))
    }

    pub fn users(&self) -> &UserCache {
        &self.recent
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Creates the account, if the registration mode (`mode`, unless an
    /// admin chose another) lets it; `invite` is the token of an invite link.
    /// Two racing registrations of one name are settled by the unique
    /// index: exactly one wins, the other is `Taken`.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn register(
        &self,
        username: &Username,
        password: &Password,
        mode: RegistrationMode,
        invite: Option<&str>,
    ) -> Result<User, RegisterError> {
        let password_hash = self.hasher.hash(password).await.map_err(AccountsError::from)?;
        let invite_hash = invite.map(token_hash);
        self.store
            .create_user(username, &password_hash, mode, invite_hash.as_deref())
            .await
            .map_err(RegisterError::of)
    }

    /// A sign-in through a provider: the identity's account, or, for an
    /// identity nobody has, a new account (if the registration mode lets
    /// it: `invite_hash` is the hash of the invite the sign-in came with),
    /// named after `name_hint` (made valid and unique). Never an existing
    /// account found by an equal name or email: only the identity finds one.
    /// The identity's profile and login count are brought up to date.
    #[tracing::instrument(skip_all, fields(provider = %key.provider))]
    pub async fn sign_in_with(
        &self,
        key: &IdentityKey,
        profile: &IdentityProfile,
        name_hint: Option<&str>,
        mode: RegistrationMode,
        invite_hash: Option<&str>,
    ) -> Result<ProviderSignIn, RegisterError> {
        let failed = |e: StoreError| RegisterError::Failed(e.into());
        let user = match self.store.user_by_identity(key).await.map_err(failed)? {
            Some(user) => user,
            None => {
                let names = Username::derived(name_hint);
                match self.store.create_user_with_identity(names, key, profile, mode, invite_hash).await {
                    Ok(IdentityAccount::Created(user)) => return Ok(ProviderSignIn::Registered(user)),
                    Ok(IdentityAccount::Existing(user)) => user,
                    Err(CreateUserError::Taken) => return Err(RegisterError::NoFreeName),
                    Err(e) => return Err(RegisterError::of(e)),
                }
            }
        };
        if user.is_banned() {
            return Ok(ProviderSignIn::Suspended(user));
        }
        self.store.record_identity_login(key, profile).await.map_err(failed)?;
        Ok(ProviderSignIn::Returning(user))
    }

    /// Is `password` the user's? (For changing it: the current one first.)
    pub async fn verify(&self, user: &User, password: &Password) -> Result<bool, AccountsError> {
        Ok(self.hasher.verify(password, user.password_hash.as_deref()).await?)
    }

    /// The argon2id hash of a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, AccountsError> {
        Ok(self.hasher.hash(password).await?)
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
        // An account without a password (made through a provider) goes
        // through the same work as an unknown name, and fails the same way.
        let phc = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let matches = self.hasher.verify(&creds.password, phc).await?;
        Ok(user.filter(|_| matches))
    }

    /// Concurrent requests for one user share one query (see `recent`). A
    /// banned user has no session: every request of theirs is logged out.
    async fn get_user(&self, id: &i64) -> Result<Option<User>, AccountsError> {
        let user = self
            .recent
            .0
            .try_get_with(*id, self.store.user(*id))
            .await
            .map_err(|e| AccountsError::Database(unshare(&e)))?;
        Ok(user.filter(|u| !u.is_banned()))
    }
}
