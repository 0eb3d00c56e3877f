//! How long a session lives: it ends `SESSION_IDLE` after the last request
//! or open socket, or `SESSION_LIFETIME` after login, whichever comes first.
//!
//! tower-sessions saves a session only when it changed, so an expiry "on
//! inactivity" would never move for a user who only reads. Instead a logged-in
//! session carries its login time and when it was last seen, and its expiry
//! is set explicitly from them. It is pushed forward at most once per
//! `touch_every` (a minute): a busy user costs one write a minute, not one
//! per request. Requests push it (`web::activity`); open sockets push it
//! from the sweep (`sweep`).

use std::time::Duration;

use time::OffsetDateTime;
use tower_sessions::{Expiry, Session, session::Record};

/// The keys a logged-in session carries, set at login.
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

use keys::{AGENT, HANDLE, LOGIN_AT, SEEN_AT, USER_ID};

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Without a request or an open socket for this long, the session ends.
    pub idle: Duration,
    /// This long after login, the session ends however active it is.
    pub lifetime: Duration,
}

impl SessionPolicy {
    /// How often, at most, activity moves the expiry (and writes the session).
    pub fn touch_every(&self) -> Duration {
        (self.idle / 4).min(Duration::from_secs(60))
    }

    /// When a session that logged in at `login_at` and was seen at `now` ends.
    pub fn expiry(&self, login_at: i64, now: OffsetDateTime) -> OffsetDateTime {
        let absolute = OffsetDateTime::from_unix_timestamp(login_at).unwrap_or(now) + self.lifetime;
        (now + self.idle).min(absolute)
    }

    /// A login (or registration): the clocks start now, and the session
    /// notes whose it is and from what browser (for the account page's list).
    pub async fn started(
        &self,
        session: &Session,
        user_id: i64,
        user_agent: &str,
    ) -> Result<(), tower_sessions::session::Error> {
        let now = OffsetDateTime::now_utc();
        session.insert(LOGIN_AT, now.unix_timestamp()).await?;
        session.insert(SEEN_AT, now.unix_timestamp()).await?;
        session.insert(USER_ID, user_id).await?;
        session.insert(HANDLE, crate::token::hex(16)).await?;
        session.insert(AGENT, super::user_agent::summary(user_agent)).await?;
        session.set_expiry(Some(Expiry::AtDateTime(self.expiry(now.unix_timestamp(), now))));
        Ok(())
    }

    /// A request on the session: if it was last seen at least `touch_every`
    /// ago, it is seen now and its expiry moves. Returns whether the session
    /// is a logged-in one. A store that fails here is not the request's
    /// business: the session layer reports it if it matters.
    pub async fn seen(&self, session: &Session) -> bool {
        let seen_at = session.get::<i64>(SEEN_AT).await.ok().flatten();
        if let Some(seen_at) = seen_at
            && now_secs() - seen_at >= self.touch_every().as_secs() as i64
            && let Ok(Some(login_at)) = session.get::<i64>(LOGIN_AT).await
        {
            let now = OffsetDateTime::now_utc();
            if session.insert(SEEN_AT, now.unix_timestamp()).await.is_ok() {
                session.set_expiry(Some(Expiry::AtDateTime(self.expiry(login_at, now))));
            }
        }
        seen_at.is_some()
    }

    /// For a session record with an open socket: the expiry activity gives
    /// it now, if that is at least `touch_every` later than the one it has.
    pub fn pushed_expiry(&self, record: &Record) -> Option<OffsetDateTime> {
        let login_at = record.data.get(LOGIN_AT)?.as_i64()?;
        let now = OffsetDateTime::now_utc();
        let expiry = self.expiry(login_at, now);
        (expiry - record.expiry_date >= self.touch_every()).then_some(expiry)
    }
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// What a logged-in session's record says about it, for the account page's
/// list (`None` for a session nobody is logged in to).
pub fn listing(record: &Record) -> Option<crate::store::SessionMeta> {
    let number = |key: &str| record.data.get(key).and_then(|v| v.as_i64());
    let text = |key: &str| record.data.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Some(crate::store::SessionMeta {
        user_id: number(USER_ID)?,
        handle: text(HANDLE)?,
        login_at: number(LOGIN_AT)?,
        seen_at: number(SEEN_AT)?,
        agent: text(AGENT).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SessionPolicy =
        SessionPolicy { idle: Duration::from_secs(24 * 3600), lifetime: Duration::from_secs(7 * 24 * 3600) };

    #[test]
    fn the_expiry_is_the_earlier_of_idle_and_absolute() {
        let login = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(POLICY.expiry(login.unix_timestamp(), login), login + Duration::from_secs(24 * 3600));
        let late = login + Duration::from_secs(6 * 24 * 3600 + 12 * 3600);
        assert_eq!(POLICY.expiry(login.unix_timestamp(), late), login + Duration::from_secs(7 * 24 * 3600));
        assert_eq!(POLICY.touch_every(), Duration::from_secs(60));
    }
}
