//! tower-sessions' store over Lobby's database (`store::sessions`): the
//! records MessagePack-encoded as before, a logged-in session's listing
//! written with it, and every delete carried out here as an ending
//! ([`Endings`]) as soon as the row is gone.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, ExpiredDeletion, Result},
};

use super::{Endings, policy::listing};
use crate::{
    domain::Reason,
    store::{SessionRow, Store},
};

#[derive(Debug, Clone)]
pub struct DatabaseSessions {
    store: Store,
    endings: Endings,
    /// Sessions whose id is being replaced (a password change keeps the
    /// session under a new id): their sockets are told to reconnect, not
    /// that the session ended.
    renewing: Arc<Mutex<HashSet<Id>>>,
}

impl DatabaseSessions {
    pub fn new(store: Store, endings: Endings) -> Self {
        Self { store, endings, renewing: Arc::default() }
    }

    /// The session `id` is about to get a new id (and so be deleted under
    /// the old one): its sockets reconnect rather than leave.
    pub fn renewing(&self, id: Id) {
        self.renewing.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    fn was_renewing(&self, id: &Id) -> bool {
        self.renewing.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Those of `ids` whose sessions have not expired, by id, in one query.
    pub async fn load_many(&self, ids: &[Id]) -> Result<HashMap<String, Record>> {
        let rows = self.store.load_sessions(ids).await.map_err(backend)?;
        rows.into_iter()
            .map(|(id, data)| {
                Ok((id, rmp_serde::from_slice(&data).map_err(|e| Error::Decode(e.to_string()))?))
            })
            .collect()
    }

    /// Ends a session: deleted, every node told, carried out here.
    pub async fn end(&self, id: &Id, reason: Reason) -> std::result::Result<(), crate::store::StoreError> {
        let ending = self.store.delete_session(id, reason).await?;
        self.endings.apply(&ending).await;
        Ok(())
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

fn encoded(record: &Record) -> Result<Vec<u8>> {
    rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))
}

#[async_trait::async_trait]
impl SessionStore for DatabaseSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let data = encoded(record)?;
            let meta = listing(record);
            let row = SessionRow {
                id: &record.id,
                data: &data,
                expiry: record.expiry_date,
                listing: meta.as_ref(),
            };
            if self.store.create_session(&row).await.map_err(backend)? {
                return Ok(());
            }
            // Taken (128 random bits: never, in practice): another id.
            record.id = Id::default();
        }
    }

    /// Updates the row; a session ended meanwhile stays ended.
    async fn save(&self, record: &Record) -> Result<()> {
        let data = encoded(record)?;
        let meta = listing(record);
        let row =
            SessionRow { id: &record.id, data: &data, expiry: record.expiry_date, listing: meta.as_ref() };
        if !self.store.update_session(&row).await.map_err(backend)? {
            tracing::debug!("a session ended while a request of it was in flight: not written back");
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self.store.load_session(id).await.map_err(backend)? {
            Some(data) => Ok(Some(rmp_serde::from_slice(&data).map_err(|e| Error::Decode(e.to_string()))?)),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let reason = if self.was_renewing(id) { Reason::Renewed } else { Reason::Ended };
        self.end(id, reason).await.map_err(backend)
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for DatabaseSessions {
    async fn delete_expired(&self) -> Result<()> {
        self.store.delete_expired_sessions().await.map_err(backend)
    }
}
