//! Accounts: creating them (under the registration mode), with a password
//! or through an identity at a provider, and finding them.
//! Roles, bans and passwords are changed in `account_changes`.
//!
//! Creating runs in an exclusive transaction ([`BeginExclusive`]), so "the
//! first account is the admin" and "an invite makes one account" hold when
//! two registrations race.

use super::{
    BeginExclusive, Store, StoreError, Unique, admission,
    identities::{self, IDENTITY_KEY},
    on_engine, violates,
};
use crate::domain::{DerivedNames, IdentityKey, IdentityProfile, RegistrationMode, Role, User, Username};

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

pub(super) const USER: &str = "SELECT id, username, password_hash, session_key, role, banned_at FROM users";

/// A `users` row, as [`USER`] reads it.
#[derive(sqlx::FromRow)]
pub(super) struct UserRecord {
    id: i64,
    username: String,
    password_hash: Option<String>,
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

/// Whether the registration mode lets a new account be made, in the
/// exclusive transaction `$tx` that makes it: the configured `$mode`, unless
/// an admin stored another; anyone while no account exists. Evaluates to
/// (whether this is the first account, the id of the invite it uses), or
/// returns the refusal.
macro_rules! admission {
    ($tx:ident, $mode:expr, $invite:expr, $now:expr) => {{
        let first: bool =
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users)").fetch_one(&mut *$tx).await?;
        let stored: Option<String> =
            sqlx::query_scalar(admission::MODE).bind(admission::MODE_KEY).fetch_optional(&mut *$tx).await?;
        let mode = stored.and_then(|m| m.parse().ok()).unwrap_or($mode);
        let invite_id: Option<i64> = match (first, mode, $invite) {
            (true, _, _) | (false, RegistrationMode::Open, _) => None,
            (false, RegistrationMode::Closed, _) => return Err(CreateUserError::Closed),
            (false, RegistrationMode::Invite, None) => return Err(CreateUserError::InviteNeeded),
            (false, RegistrationMode::Invite, Some(hash)) => Some(
                sqlx::query_scalar(admission::USABLE_INVITE)
                    .bind(hash)
                    .bind($now)
                    .fetch_optional(&mut *$tx)
                    .await?
                    .ok_or(CreateUserError::InviteInvalid)?,
            ),
        };
        (first, invite_id)
    }};
}

/// Inserts the account in `$tx` (`$hash`: its password's, or none) and uses
/// up its invite; evaluates to the [`User`]. Two names that are the same by
/// case or by look break a unique index: `Taken`.
macro_rules! insert_user {
    ($tx:ident, $name:expr, $hash:expr, $first:expr, $invite_id:expr, $now:expr) => {{
        let role = if $first { Role::Admin } else { Role::Member };
        let created: Result<UserRecord, sqlx::Error> = sqlx::query_as(
            "INSERT INTO users (username, skeleton, password_hash, session_key, created_at, role)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, username, password_hash, session_key, role, banned_at",
        )
        .bind($name.as_str())
        .bind($name.skeleton())
        .bind($hash)
        .bind(crate::token::hex(16))
        .bind($now)
        .bind(role.as_str())
        .fetch_one(&mut *$tx)
        .await;
        let user = User::from(created.map_err(|e| {
            if violates(&e, &NAME) || violates(&e, &LOOK) {
                CreateUserError::Taken
            } else {
                CreateUserError::from(e)
            }
        })?);
        // Every account is in the lobby.
        sqlx::query("UPDATE rooms SET members = members + 1 WHERE id = 1").execute(&mut *$tx).await?;
        if let Some(invite) = $invite_id {
            sqlx::query("UPDATE invites SET used_by = $1, used_at = $2 WHERE id = $3")
                .bind(user.id)
                .bind($now)
                .bind(invite)
                .execute(&mut *$tx)
                .await?;
        }
        user
    }};
}

/// Is a name taken, by case or by look ($1 the name, $2 its skeleton)?
const NAME_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1) OR skeleton = $2)";

/// How many derived names a new account through a provider tries before
/// giving up (each is one indexed lookup, inside the registrations' lock).
const NAMES_TRIED: usize = 1000;

/// An account made, or found, for an identity at a provider.
#[derive(Debug)]
pub enum IdentityAccount {
    /// A new account, with the identity as its way in (and no password).
    Created(User),
    /// The identity was linked to this account meanwhile (a login racing this one).
    Existing(User),
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
            let (first, invite_id) = admission!(tx, mode, invite, now);
            let user = insert_user!(tx, name, Some(password_hash), first, invite_id, now);
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Creates an account for an identity at a provider, under the same
    /// registration rules as [`create_user`](Self::create_user), with no
    /// password: the identity is its way in, and this is its first login.
    /// Its name is the first of `names` free by case and by look. The
    /// account and its identity are made in one transaction: never one
    /// without the other. An identity already linked (a login racing this
    /// one) makes nothing: its account is returned.
    pub async fn create_user_with_identity(
        &self,
        names: DerivedNames,
        key: &IdentityKey,
        profile: &IdentityProfile,
        mode: RegistrationMode,
        invite: Option<&str>,
    ) -> Result<IdentityAccount, CreateUserError> {
        let now = now_secs();
        let sql = format!("{USER} WHERE id = (SELECT user_id FROM identities {IDENTITY_KEY})");
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            let linked: Option<UserRecord> = sqlx::query_as(&sql)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(user) = linked {
                return Ok(IdentityAccount::Existing(User::from(user)));
            }
            let (first, invite_id) = admission!(tx, mode, invite, now);
            let mut free = None;
            for name in names.take(NAMES_TRIED) {
                let taken: bool = sqlx::query_scalar(NAME_TAKEN)
                    .bind(name.as_str())
                    .bind(name.skeleton())
                    .fetch_one(&mut *tx)
                    .await?;
                if !taken {
                    free = Some(name);
                    break;
                }
            }
            let Some(name) = free else { return Err(CreateUserError::Taken) };
            let user = insert_user!(tx, name, None::<&str>, first, invite_id, now);
            sqlx::query(identities::INSERT)
                .bind(user.id)
                .bind(key.provider.as_str())
                .bind(&key.issuer)
                .bind(&key.subject)
                .bind(&profile.display_name)
                .bind(&profile.photo_url)
                .bind(&profile.email)
                .bind(now)
                .bind(Some(now))
                .bind(1_i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(IdentityAccount::Created(user))
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
