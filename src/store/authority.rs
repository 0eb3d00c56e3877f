//! Authority, checked where the change is made: in the transaction that
//! makes it. A request carries its session and user as they were when it
//! started (possibly from a cache); by the time it changes something the
//! session may have ended or the admin been demoted or banned. So each
//! change on behalf of a session first checks, in its own transaction, that
//! the session is still live (and, for an admin's change, that its user is
//! still an admin and not banned). On PostgreSQL the rows checked are
//! locked for share until commit, so an ending or a demotion that commits
//! first wins, and one that comes later waits; on SQLite the transaction
//! holds the write lock already.

use sqlx::{Postgres, Sqlite, Transaction};
use time::OffsetDateTime;
use tower_sessions::session::Id;

/// Who asks for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A logged-in user, through their session.
    User { user: i64, session: Id },
    /// `lobby admin` on the server's own machine.
    CommandLine,
}

impl Actor {
    pub fn user(&self) -> Option<i64> {
        match self {
            Actor::User { user, .. } => Some(*user),
            Actor::CommandLine => None,
        }
    }
}

/// What a transaction can check, on either engine.
pub(super) trait Authority: Send {
    /// Is `actor` still logged in (the command line always is)?
    fn still_logged_in(&mut self, actor: Actor) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// Is `actor` still logged in as an admin who is not banned?
    fn still_admin(&mut self, actor: Actor) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

/// The actor's session, live, listed as theirs; with its user's role.
const LIVE: &str = "FROM users u
     JOIN account_sessions a ON a.user_id = u.id AND a.session_id = $2
     JOIN {sessions} s ON s.id = a.session_id AND s.expiry_date > $3
     WHERE u.id = $1";
const ADMIN: &str = " AND u.role = 'admin' AND u.banned_at IS NULL";

fn query(sessions: &str, admin: bool, lock: &str) -> String {
    let live = LIVE.replace("{sessions}", sessions);
    format!("SELECT 1 {live}{} {lock}", if admin { ADMIN } else { "" })
}

/// Runs the check `$sql` (the actor's user, session and now as $1, $2, $3).
macro_rules! check {
    ($tx:expr, $actor:expr, $sql:expr) => {{
        let Actor::User { user, session } = $actor else { return Ok(true) };
        let found: Option<i32> = sqlx::query_scalar($sql)
            .bind(user)
            .bind(session.to_string())
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&mut **$tx)
            .await?;
        Ok(found.is_some())
    }};
}

impl Authority for Transaction<'static, Sqlite> {
    async fn still_logged_in(&mut self, actor: Actor) -> Result<bool, sqlx::Error> {
        check!(self, actor, &query("tower_sessions", false, ""))
    }
    async fn still_admin(&mut self, actor: Actor) -> Result<bool, sqlx::Error> {
        check!(self, actor, &query("tower_sessions", true, ""))
    }
}

impl Authority for Transaction<'static, Postgres> {
    async fn still_logged_in(&mut self, actor: Actor) -> Result<bool, sqlx::Error> {
        check!(self, actor, &query("tower_sessions.session", false, "FOR SHARE OF u, s"))
    }
    async fn still_admin(&mut self, actor: Actor) -> Result<bool, sqlx::Error> {
        check!(self, actor, &query("tower_sessions.session", true, "FOR SHARE OF u, s"))
    }
}
