//! Which sessions each user has, for the account page: one row per
//! logged-in session, kept by the session store as it writes the session
//! (`sessions::store`), deleted with it (a foreign key that cascades).

use tower_sessions::session::Id;

use super::{Store, StoreError, on_engine};

/// A logged-in session, as listed (`sessions::policy::listing` reads it
/// off the session's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeta {
    pub user_id: i64,
    pub handle: String,
    /// Unix seconds.
    pub login_at: i64,
    pub seen_at: i64,
    pub agent: String,
}

/// One of a user's sessions, as the account page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountSession {
    pub session_id: String,
    pub handle: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_seen: i64,
    pub agent: String,
}

impl Store {
    /// The user's live sessions, most recently seen first.
    pub async fn account_sessions(&self, user_id: i64, now: i64) -> Result<Vec<AccountSession>, StoreError> {
        // tower-sessions keeps the expiry as text on SQLite, as a timestamp on PostgreSQL.
        let sql = match self {
            Store::Sqlite(_) => {
                "SELECT a.session_id, a.handle, a.created_at, a.last_seen, a.agent
                 FROM account_sessions a JOIN tower_sessions s ON s.id = a.session_id
                 WHERE a.user_id = $1 AND datetime(s.expiry_date) > datetime($2, 'unixepoch')
                 ORDER BY a.last_seen DESC, a.created_at DESC"
            }
            Store::Postgres(_) => {
                "SELECT a.session_id, a.handle, a.created_at, a.last_seen, a.agent
                 FROM account_sessions a JOIN tower_sessions.session s ON s.id = a.session_id
                 WHERE a.user_id = $1 AND s.expiry_date > to_timestamp($2)
                 ORDER BY a.last_seen DESC, a.created_at DESC"
            }
        };
        Ok(on_engine!(self, |pool| sqlx::query_as(sql).bind(user_id).bind(now).fetch_all(pool).await)?)
    }

    /// The session of `user_id` with this handle (`None`: none of theirs).
    pub async fn session_by_handle(&self, user_id: i64, handle: &str) -> Result<Option<Id>, StoreError> {
        let id: Option<String> = on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT session_id FROM account_sessions WHERE user_id = $1 AND handle = $2")
                .bind(user_id)
                .bind(handle)
                .fetch_optional(pool)
                .await
        })?;
        Ok(id.and_then(|id| id.parse().ok()))
    }
}

/// Writes the listing of a logged-in session ($1 its id), in the
/// transaction that writes the session.
pub(super) const NOTE: &str =
    "INSERT INTO account_sessions (session_id, user_id, handle, created_at, last_seen, agent)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (session_id) DO UPDATE SET last_seen = excluded.last_seen";
