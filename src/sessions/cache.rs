//! A short-lived, read-through copy of recently used sessions in front of the
//! database store, so a page view or an upgrade does not cost a session query.
//!
//! - Concurrent misses for one session share one database read (a storm of
//!   tabs opening with one cookie must not queue hundreds of identical reads).
//! - A write reaches the database first; only once it succeeded is the copy
//!   updated, so the cache is never ahead of the database.
//! - A delete (logout) leaves a tombstone once the row is gone, checked on
//!   every load: a read racing the delete cannot bring the session back.
//! - A logout on *another* server sharing the database: on a cluster, every
//!   node hears of it (a notification) and forgets its copy; the cache is
//!   trusted only while that listener is known to be alive, and emptied after
//!   it was away. Two SQLite servers on one file have no notifications: there
//!   a logout elsewhere reaches this one within the time-to-live, which is
//!   why it is short (`SESSION_CACHE_TTL`).

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

/// The session store the app uses: the database's, behind this cache.
pub type Sessions = CachedSessions<super::DatabaseSessions>;

#[derive(Debug, Clone)]
pub struct CachedSessions<S> {
    store: S,
    /// What the database said (`None`: no such session), for a few seconds.
    recent: moka::future::Cache<Id, Option<Record>>,
    /// Sessions deleted here or heard of as ended; outlives any copy in `recent`.
    deleted: moka::sync::Cache<Id, ()>,
    /// On a cluster: whether the listener that reports endings is alive.
    /// While it is not, every load goes to the database.
    trusted: Option<watch::Receiver<bool>>,
}

impl<S> CachedSessions<S> {
    pub fn new(store: S, ttl: Duration, capacity: u64) -> Self {
        Self {
            store,
            recent: moka::future::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            deleted: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl * 2).build(),
            trusted: None,
        }
    }

    /// Use the cache only while `trusted` says so.
    pub fn trusting(mut self, trusted: watch::Receiver<bool>) -> Self {
        self.trusted = Some(trusted);
        self
    }

    pub fn inner(&self) -> &S {
        &self.store
    }

    /// This session ended elsewhere: never serve it from here again (the
    /// tombstone wins over a cached copy, and outlives it).
    pub fn forget(&self, id: &Id) {
        self.deleted.insert(*id, ());
    }

    /// Endings may have been missed: drop every copy.
    pub fn forget_all(&self) {
        self.recent.invalidate_all();
    }

    fn trusted(&self) -> bool {
        self.trusted.as_ref().is_none_or(|t| *t.borrow())
    }
}

#[async_trait::async_trait]
impl<S: Send + Sync> super::OnEnding for CachedSessions<S> {
    async fn ended(&self, ending: &crate::domain::Ending) {
        for session in &ending.sessions {
            self.forget(session);
        }
    }

    fn forget_all(&self) {
        CachedSessions::forget_all(self);
    }
}

fn live(record: Record) -> Option<Record> {
    (record.expiry_date > time::OffsetDateTime::now_utc()).then_some(record)
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for CachedSessions<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.store.create(record).await?;
        self.recent.insert(record.id, Some(record.clone())).await;
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.store.save(record).await?;
        self.recent.insert(record.id, Some(record.clone())).await;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if self.deleted.contains_key(id) {
            return Ok(None);
        }
        if !self.trusted() {
            return Ok(self.store.load(id).await?.and_then(live));
        }
        let loaded = self
            .recent
            .try_get_with(*id, self.store.load(id))
            .await
            .map_err(|e: Arc<Error>| Error::Backend(e.to_string()))?;
        // Deleted while we were reading: the tombstone wins.
        if self.deleted.contains_key(id) {
            return Ok(None);
        }
        Ok(loaded.and_then(live))
    }

    /// The tombstone goes in only once the row is gone: a failed delete
    /// (the user still logged in, as the database says) changes nothing.
    async fn delete(&self, id: &Id) -> Result<()> {
        self.store.delete(id).await?;
        self.deleted.insert(*id, ());
        self.recent.invalidate(id).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{sessions::DatabaseSessions, store::Store};

    /// One connection: each connection to `sqlite::memory:` is its own database.
    async fn database() -> sqlx::SqlitePool {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        Store::Sqlite(pool.clone()).migrate().await.unwrap();
        pool
    }

    fn on(pool: sqlx::SqlitePool) -> DatabaseSessions {
        DatabaseSessions::new(Store::Sqlite(pool), Default::default())
    }

    async fn store() -> CachedSessions<DatabaseSessions> {
        CachedSessions::new(on(database().await), Duration::from_secs(60), 100)
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
        sessions.recent.run_pending_tasks().await;
        assert!(sessions.load(&r.id).await.unwrap().is_some());
        sessions.delete(&r.id).await.unwrap();
        assert!(sessions.load(&r.id).await.unwrap().is_none());
        assert!(sessions.inner().load(&r.id).await.unwrap().is_none(), "gone from the database too");
    }

    #[tokio::test]
    async fn saving_an_ended_session_does_not_bring_it_back() {
        let sessions = store().await;
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        sessions.inner().delete(&r.id).await.unwrap();
        // A request that loaded it before the end saves it at its own end.
        sessions.inner().save(&r).await.unwrap();
        assert!(sessions.inner().load(&r.id).await.unwrap().is_none(), "still ended");
    }

    #[tokio::test]
    async fn a_tombstone_beats_a_stale_read() {
        let sessions = store().await;
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        sessions.delete(&r.id).await.unwrap();
        // A load that had read the row before the delete caches it now.
        sessions.recent.insert(r.id, Some(r.clone())).await;
        assert!(sessions.load(&r.id).await.unwrap().is_none(), "the tombstone wins");
    }

    /// The database store, counting the loads that reach it.
    #[derive(Debug, Clone)]
    struct Counting(DatabaseSessions, Arc<std::sync::atomic::AtomicUsize>);

    #[async_trait::async_trait]
    impl SessionStore for Counting {
        async fn create(&self, record: &mut Record) -> Result<()> {
            self.0.create(record).await
        }
        async fn save(&self, record: &Record) -> Result<()> {
            self.0.save(record).await
        }
        async fn load(&self, id: &Id) -> Result<Option<Record>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Slow enough that the other loads arrive while this one runs.
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.0.load(id).await
        }
        async fn delete(&self, id: &Id) -> Result<()> {
            self.0.delete(id).await
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_read() {
        let database = store().await.store;
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sessions = CachedSessions::new(Counting(database, reads.clone()), Duration::from_secs(60), 100);
        let mut r = record(time::Duration::hours(1));
        sessions.store.0.create(&mut r).await.unwrap();
        let loads: Vec<_> = (0..50)
            .map(|_| {
                let sessions = sessions.clone();
                tokio::spawn(async move { sessions.load(&r.id).await.unwrap() })
            })
            .collect();
        for load in loads {
            assert!(load.await.unwrap().is_some());
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1, "fifty misses, one database read");
    }

    #[tokio::test]
    async fn forgotten_and_untrusted_sessions_come_from_the_database() {
        let sessions = store().await;
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        sessions.forget(&r.id);
        assert!(sessions.load(&r.id).await.unwrap().is_none(), "heard of as ended: gone here");

        let (trust, trusted) = watch::channel(true);
        let pool = database().await;
        let sessions = CachedSessions::new(on(pool.clone()), Duration::from_secs(60), 100).trusting(trusted);
        let mut r = record(time::Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        assert!(sessions.load(&r.id).await.unwrap().is_some());
        sqlx::query("DELETE FROM tower_sessions").execute(&pool).await.unwrap();
        assert!(sessions.load(&r.id).await.unwrap().is_some(), "trusted: the cached copy");
        trust.send_replace(false);
        assert!(sessions.load(&r.id).await.unwrap().is_none(), "not trusted: the database says gone");
    }

    #[tokio::test]
    async fn an_expired_copy_is_not_a_session() {
        let sessions = store().await;
        let r = record(time::Duration::seconds(-1));
        sessions.recent.insert(r.id, Some(r.clone())).await;
        assert!(sessions.load(&r.id).await.unwrap().is_none());
    }
}
