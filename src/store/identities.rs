//! Identities at providers (GitHub, OpenID Connect): finding the account an
//! identity belongs to, counting its logins, and linking and unlinking one
//! from the account page. An account is made with its identity in
//! `users::create_user_with_identity`.
//!
//! Linking and unlinking are changes made on behalf of a session: each
//! checks, in its own exclusive transaction, that the session is still live
//! ([`Authority`]). Exclusive, so two unlinks racing cannot both see the
//! other's identity as the one that remains.

use super::{
    BeginExclusive, Store, StoreError,
    authority::{Actor, Authority},
    on_engine,
    users::{USER, UserRecord},
};
use crate::domain::{Identity, IdentityKey, IdentityProfile, Provider, User};

/// Matches an identity by its key ($1 provider, $2 issuer, $3 subject).
pub(super) const IDENTITY_KEY: &str = "WHERE provider = $1 AND issuer = $2 AND subject = $3";

/// Inserts an identity: user, provider, issuer, subject, display name,
/// photo URL, email, created, last login, login count.
pub(super) const INSERT: &str = "INSERT INTO identities
     (user_id, provider, issuer, subject, display_name, photo_url, email, created_at, last_login_at, login_count)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Why linking or unlinking an identity was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityChangeError {
    /// The session ended since the request began.
    #[error("You are no longer logged in. Log in again.")]
    NotAllowed,
    #[error("That sign-in is connected to another Lobby account, so it cannot be connected to yours.")]
    LinkedElsewhere,
    #[error("That sign-in is already connected to your account.")]
    AlreadyYours,
    /// One identity per provider in an account.
    #[error("Your account is already connected to an account there. Disconnect that one first.")]
    ProviderTaken,
    #[error("You have no such sign-in connected (it may have been disconnected already).")]
    NotFound,
    #[error(
        "That is the only way into your account. Set a password or connect another sign-in first, then disconnect this one."
    )]
    LastWayIn,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IdentityChangeError {
    fn from(e: sqlx::Error) -> Self {
        IdentityChangeError::Store(StoreError(e))
    }
}

/// An `identities` row.
#[derive(sqlx::FromRow)]
struct IdentityRecord {
    id: i64,
    user_id: i64,
    provider: String,
    issuer: String,
    subject: String,
    display_name: Option<String>,
    photo_url: Option<String>,
    email: Option<String>,
    created_at: i64,
    last_login_at: Option<i64>,
    login_count: i64,
}

impl IdentityRecord {
    /// A row whose provider this server does not know (written by a later
    /// release) is left out.
    fn into_identity(self) -> Option<Identity> {
        let provider: Provider = self.provider.parse().ok()?;
        Some(Identity {
            id: self.id,
            user_id: self.user_id,
            key: IdentityKey { provider, issuer: self.issuer, subject: self.subject },
            profile: IdentityProfile {
                display_name: self.display_name,
                email: self.email,
                photo_url: self.photo_url,
            },
            created_at: self.created_at,
            last_login_at: self.last_login_at,
            login_count: self.login_count,
        })
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Store {
    /// The account this identity belongs to, if any.
    pub async fn user_by_identity(&self, key: &IdentityKey) -> Result<Option<User>, StoreError> {
        let sql = format!("{USER} WHERE id = (SELECT user_id FROM identities {IDENTITY_KEY})");
        let row: Option<UserRecord> = on_engine!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(User::from))
    }

    /// A login through this identity: its count goes up by one, its last
    /// login is now, and its profile is what the provider says today.
    /// False if the identity is not (or no longer) linked.
    pub async fn record_identity_login(
        &self,
        key: &IdentityKey,
        profile: &IdentityProfile,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE identities SET login_count = login_count + 1, last_login_at = $4,
                 display_name = $5, photo_url = $6, email = $7
             {IDENTITY_KEY}"
        );
        let updated = on_engine!(self, |pool| {
            sqlx::query(&sql)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .bind(now_secs())
                .bind(&profile.display_name)
                .bind(&profile.photo_url)
                .bind(&profile.email)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(updated > 0)
    }

    /// The identities linked to an account, oldest first.
    pub async fn identities_of(&self, user_id: i64) -> Result<Vec<Identity>, StoreError> {
        const OF: &str = "SELECT id, user_id, provider, issuer, subject, display_name, photo_url, email,
                                 created_at, last_login_at, login_count
                          FROM identities WHERE user_id = $1 ORDER BY id";
        let rows: Vec<IdentityRecord> =
            on_engine!(self, |pool| sqlx::query_as(OF).bind(user_id).fetch_all(pool).await)?;
        Ok(rows.into_iter().filter_map(IdentityRecord::into_identity).collect())
    }

    /// Links an identity to the account of `by`, whose session must still
    /// be live. An identity belongs to one account, and an account has one
    /// identity per provider (and issuer).
    pub async fn link_identity(
        &self,
        key: &IdentityKey,
        profile: &IdentityProfile,
        by: Actor,
    ) -> Result<(), IdentityChangeError> {
        let Some(user_id) = by.user() else { return Err(IdentityChangeError::NotAllowed) };
        let owner_sql = format!("SELECT user_id FROM identities {IDENTITY_KEY}");
        let now = now_secs();
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_logged_in(by).await? {
                return Err(IdentityChangeError::NotAllowed);
            }
            let owner: Option<i64> = sqlx::query_scalar(&owner_sql)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .fetch_optional(&mut *tx)
                .await?;
            match owner {
                Some(owner) if owner == user_id => return Err(IdentityChangeError::AlreadyYours),
                Some(_) => return Err(IdentityChangeError::LinkedElsewhere),
                None => {}
            }
            let provider_taken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE user_id = $1 AND provider = $2 AND issuer = $3)",
            )
            .bind(user_id)
            .bind(key.provider.as_str())
            .bind(&key.issuer)
            .fetch_one(&mut *tx)
            .await?;
            if provider_taken {
                return Err(IdentityChangeError::ProviderTaken);
            }
            sqlx::query(INSERT)
                .bind(user_id)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .bind(&profile.display_name)
                .bind(&profile.photo_url)
                .bind(&profile.email)
                .bind(now)
                .bind(None::<i64>)
                .bind(0_i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Unlinks one of the identities of `by`'s account, whose session must
    /// still be live; refused while it is the account's only way in (no
    /// password, no other identity).
    pub async fn unlink_identity(&self, identity_id: i64, by: Actor) -> Result<(), IdentityChangeError> {
        let Some(user_id) = by.user() else { return Err(IdentityChangeError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            if !tx.still_logged_in(by).await? {
                return Err(IdentityChangeError::NotAllowed);
            }
            let (has_password, identities): (bool, i64) = sqlx::query_as(
                "SELECT u.password_hash IS NOT NULL,
                        (SELECT count(*) FROM identities i WHERE i.user_id = u.id)
                 FROM users u WHERE u.id = $1",
            )
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            let theirs: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM identities WHERE id = $1 AND user_id = $2)")
                    .bind(identity_id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if !theirs {
                return Err(IdentityChangeError::NotFound);
            }
            if !has_password && identities <= 1 {
                return Err(IdentityChangeError::LastWayIn);
            }
            sqlx::query("DELETE FROM identities WHERE id = $1").bind(identity_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
