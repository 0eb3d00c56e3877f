//! A short-lived, read-through copy of recently used sessions in front of the
//! database store, so a page view does not cost a session query.
//!
//! - A write reaches the database first; only once it succeeded is the copy
//!   updated, so the cache is never ahead of the database.
//! - A delete (logout) leaves a tombstone once the row is gone: a load that
//!   read the row just before cannot put the session back into the cache.
//! - A logout on *another* server sharing the database reaches this one
//!   within the time-to-live, which is why it is short (`SESSION_CACHE_TTL`).

use std::time::Duration;

use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::Result,
};

#[derive(Debug, Clone)]
pub struct CachedSessions<S> {
    store: S,
    /// `None` is a tombstone: deleted here, whatever a racing load read.
    recent: moka::sync::Cache<Id, Option<Record>>,
}

impl<S> CachedSessions<S> {
    pub fn new(store: S, ttl: Duration, capacity: u64) -> Self {
        Self { store, recent: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }

    pub fn inner(&self) -> &S {
        &self.store
    }
}

fn live(record: Record) -> Option<Record> {
    (record.expiry_date > time::OffsetDateTime::now_utc()).then_some(record)
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for CachedSessions<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.store.create(record).await?;
        self.recent.insert(record.id, Some(record.clone()));
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.store.save(record).await?;
        self.recent.insert(record.id, Some(record.clone()));
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if let Some(cached) = self.recent.get(id) {
            return Ok(cached.and_then(live));
        }
        let loaded = self.store.load(id).await?;
        // Only where nothing is cached: a tombstone written meanwhile wins.
        let entry = self.recent.entry(*id).or_insert(loaded);
        Ok(entry.into_value().and_then(live))
    }

    /// The tombstone goes in only once the row is gone: a failed delete
    /// (the user still logged in, as the database says) changes nothing, and
    /// a load racing the delete either cached before it (overwritten here) or
    /// finds the tombstone.
    async fn delete(&self, id: &Id) -> Result<()> {
        self.store.delete(id).await?;
        self.recent.insert(*id, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> CachedSessions<tower_sessions_sqlx_store::SqliteStore> {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&pool).await.unwrap();
        CachedSessions::new(tower_sessions_sqlx_store::SqliteStore::new(pool), Duration::from_secs(60), 100)
    }

    fn record(expires_in: time::Duration) -> Record {
        Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn reads_through_and_forgets_on_delete() {
        let sessions = store().await;
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        assert!(sessions.load(&r.id).await.unwrap().is_some());
        // Loaded from the database after the cache is emptied.
        sessions.recent.invalidate_all();
        assert!(sessions.load(&r.id).await.unwrap().is_some());
        sessions.delete(&r.id).await.unwrap();
        assert!(sessions.load(&r.id).await.unwrap().is_none());
        assert!(sessions.inner().load(&r.id).await.unwrap().is_none(), "gone from the database too");
    }

    #[tokio::test]
    async fn a_tombstone_beats_a_stale_read() {
        let sessions = store().await;
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        sessions.delete(&r.id).await.unwrap();
        // A load that had read the row before the delete tries to cache it now.
        let stale = Some(r.clone());
        let kept = sessions.recent.entry(r.id).or_insert(stale).into_value();
        assert!(kept.is_none(), "the tombstone stays");
        assert!(sessions.load(&r.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_expired_copy_is_not_a_session() {
        let sessions = store().await;
        let r = record(time::Duration::seconds(-1));
        sessions.recent.insert(r.id, Some(r.clone()));
        assert!(sessions.load(&r.id).await.unwrap().is_none());
    }
}
