//! Which sessions each user has, for the account page: one row per
//! logged-in session, kept by the session store as it writes the session
//! (`store::sessions`), deleted with it.

use tower_sessions::session::{Id, Record};

use super::{Store, StoreError, on_engine};

/// The keys a logged-in session carries (set at login, `web::activity`).
pub mod keys {
    /// Unix seconds.
    pub const LOGIN_AT: &str = "lobby.login_at";
    /// Unix seconds; moved forward at most once a minute.
    pub const SEEN_AT: &str = "lobby.seen_at";
    pub const USER_ID: &str = "lobby.user_id";
    /// What the account page shows instead of the session's id.
    pub const HANDLE: &str = "lobby.handle";
    /// "Firefox on Linux".
    pub const AGENT: &str = "lobby.agent";
}

/// What a logged-in session's record says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeta {
    pub user_id: i64,
    pub handle: String,
    pub login_at: i64,
    pub seen_at: i64,
    pub agent: String,
}

impl SessionMeta {
    /// `None` for a session nobody is logged in to.
    pub fn of(record: &Record) -> Option<Self> {
        let number = |key: &str| record.data.get(key).and_then(|v| v.as_i64());
        let text = |key: &str| record.data.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Some(Self {
            user_id: number(keys::USER_ID)?,
            handle: text(keys::HANDLE)?,
            login_at: number(keys::LOGIN_AT)?,
            seen_at: number(keys::SEEN_AT)?,
            agent: text(keys::AGENT).unwrap_or_default(),
        })
    }
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
    /// Writes the session's row (after the session's own row is written).
    pub async fn note_session(&self, id: &Id, meta: &SessionMeta) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO account_sessions (session_id, user_id, handle, created_at, last_seen, agent)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (session_id) DO UPDATE SET last_seen = excluded.last_seen",
            )
            .bind(id.to_string())
            .bind(meta.user_id)
            .bind(&meta.handle)
            .bind(meta.login_at)
            .bind(meta.seen_at)
            .bind(&meta.agent)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

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
