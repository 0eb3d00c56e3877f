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
            // `live` holds each session once (a registry's keys).
            match found.remove(&session.to_string()) {
                Some(record) if record.expiry_date > time::OffsetDateTime::now_utc() => {
                    if policy.pushed_expiry(&record).is_some() {
                        keep_alive(sessions, policy, session).await;
                    }
                }
                _ => gone.push(*session),
            }
        }
    }
    Ok(gone)
}

/// Pushes a session's expiry, on the record as it is now: the chunk's copy
/// may be older than a request's change to it since.
async fn keep_alive(sessions: &Sessions, policy: &SessionPolicy, session: &Id) {
    let Ok(Some(mut record)) = sessions.inner().load(session).await else { return };
    if let Some(expiry) = policy.pushed_expiry(&record) {
        record.expiry_date = expiry;
        if let Err(e) = sessions.save(&record).await {
            tracing::debug!(error = %e, "could not keep a session with open sockets alive");
        }
    }
}

/// Sessions looked up per query: a few queries for thousands of sockets,
/// each answer a few hundred rows.
const SWEEP_CHUNK: usize = 500;
