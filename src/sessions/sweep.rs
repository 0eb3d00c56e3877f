//! A logout closes its sockets at once; the sweep catches the rest: sessions
//! that expired, or were ended where no notification reached this node. It
//! also keeps sessions with open sockets from idling out.

use tower_sessions::{SessionStore, session::Id};

use super::{SessionPolicy, Sessions};

/// Checks `live` (the sessions with sockets here) against the database
/// itself, never a cache, and returns those that are gone or expired; the
/// others, being in use, have their expiry pushed. A database that does not
/// answer gives no verdict (`Err`): the sessions stay, and the next sweep
/// tries again.
pub async fn sweep(
    sessions: &Sessions,
    policy: &SessionPolicy,
    live: Vec<Id>,
) -> Result<Vec<Id>, tower_sessions::session_store::Error> {
    let mut gone = Vec::new();
    for chunk in live.chunks(SWEEP_CHUNK) {
        let mut found = sessions.inner().load_many(chunk).await?;
        for session in chunk {
            match found.remove(&session.to_string()) {
                Some(mut record) if record.expiry_date > time::OffsetDateTime::now_utc() => {
                    if let Some(expiry) = policy.pushed_expiry(&record) {
                        record.expiry_date = expiry;
                        if let Err(e) = sessions.save(&record).await {
                            tracing::debug!(error = %e, "could not keep a session with open sockets alive");
                        }
                    }
                }
                _ => gone.push(*session),
            }
        }
    }
    Ok(gone)
}

/// Sessions looked up per query: a few queries for thousands of sockets,
/// each answer a few hundred rows.
const SWEEP_CHUNK: usize = 500;
