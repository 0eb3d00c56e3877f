//! The search indexer (SQLite): indexes messages after they commit, so an
//! append does not tokenize and stem inside the log's transaction, and a
//! burst costs what it costs without search.
//!
//! It looks every [`TICK`]. While messages keep coming it waits for a quiet
//! tick (the burst's work is done first, and then indexed in one go), but
//! never more than [`PATIENCE`] ticks, and then indexes at least as many
//! messages a turn as came in since its last: a message is in the indexes
//! about half a second after it was sent, a little more under a burst.
//! A search indexes what is still left before it looks
//! ([`SearchIndexer::before_search`]). What the indexer has not done when
//! the server stops, it does when the server starts again (the cursor is
//! in the database). PostgreSQL needs none of this: its indexes are
//! generated columns.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Mutex, MutexGuard};

use crate::{
    store::{Store, StoreError},
    tasks::Tasks,
};

/// Turns at SQLite's write lock for the chat writer and the indexer. A
/// writer that finds the lock taken sleeps in SQLite's busy handler (1, 2,
/// 5, 10… ms, whether or not it was freed meanwhile), which in a burst
/// stalled the log for far longer than the indexer held it; taking turns
/// here, each is woken the moment the other is done, in order. Cheap to
/// clone; uncontended on PostgreSQL, where nothing else takes it.
#[derive(Clone, Default)]
pub struct WriteTurns(Arc<Mutex<()>>);

impl WriteTurns {
    /// Waits for the turn; it lasts as long as the guard.
    pub async fn take(&self) -> MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// How often the indexer looks at the log.
const TICK: Duration = Duration::from_millis(100);
/// Ticks the indexer waits, at most, for the log to fall quiet.
const PATIENCE: u32 = 4;
/// Messages indexed in one transaction while the log is quiet: FTS5
/// writes a segment per transaction, so the more to one, the cheaper each.
const CHUNK: i64 = 1_000;
/// …and while messages are coming in, at least: a millisecond or so that
/// the chat writer waits for its turn.
const BUSY_CHUNK: i64 = 100;

/// Messages a search indexes first, at most, when the indexer is behind (a
/// few tens of milliseconds; a longer backlog is the indexer's).
const BEFORE_SEARCH: i64 = 2_000;
/// How long a search waits for its turn to do that, at most.
const TURN_WAIT: Duration = Duration::from_millis(250);

/// The indexer, for a search to bring the indexes up to the log first.
#[derive(Clone)]
pub struct SearchIndexer {
    store: Store,
    turns: WriteTurns,
}

impl SearchIndexer {
    /// Starts the indexer on SQLite; it writes in `turns`.
    pub fn start(store: &Store, turns: WriteTurns, tasks: &Tasks) -> Self {
        if let Store::Sqlite(_) = store {
            tasks.spawn(follow(store.clone(), turns.clone(), tasks.clone()));
        }
        Self { store: store.clone(), turns }
    }

    /// Indexes the messages the indexer has not reached yet (up to
    /// [`BEFORE_SEARCH`]), so a search finds what was sent a moment ago.
    /// Best effort: when the chat writer keeps the turn past [`TURN_WAIT`],
    /// or the database refuses, the search runs on the indexes as they are,
    /// and the indexer catches up shortly.
    pub async fn before_search(&self) {
        match self.store.search_backlog().await {
            Ok(backlog) if backlog.is_empty() => return,
            Ok(_) => {}
            Err(e) => return tracing::debug!(error = %e, "could not read the search index's cursor"),
        }
        let Ok(_turn) = tokio::time::timeout(TURN_WAIT, self.turns.take()).await else {
            return tracing::debug!("searching without the newest messages indexed: the chat writer is busy");
        };
        if let Err(e) = self.store.index_for_search(BEFORE_SEARCH).await {
            tracing::debug!(error = %e, "searching without the newest messages indexed");
        }
    }
}

async fn follow(store: Store, turns: WriteTurns, tasks: Tasks) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_newest, mut waited, mut failing) = (0, 0, false);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tasks.stopping() => return,
        }
        let outcome = match store.search_backlog().await {
            Ok(backlog) if backlog.is_empty() => {
                waited = 0;
                Ok(())
            }
            Ok(backlog) => {
                let growing = backlog.newest != last_newest;
                last_newest = backlog.newest;
                if growing && waited < PATIENCE {
                    waited += 1;
                    Ok(())
                } else {
                    waited = 0;
                    catch_up(&store, &turns, &tasks, backlog.newest, growing).await
                }
            }
            Err(e) => Err(e),
        };
        // Tried again every tick; said once, and once more when it works again.
        match outcome {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "could not index messages for search; trying again");
            }
            Ok(()) if failing => {
                failing = false;
                tracing::info!("indexing messages for search again");
            }
            _ => {}
        }
    }
}

/// Indexes everything the log holds now, a chunk to a turn: large chunks
/// while nothing else is written, small ones while messages keep coming.
async fn catch_up(
    store: &Store,
    turns: &WriteTurns,
    tasks: &Tasks,
    mut newest: i64,
    busy: bool,
) -> Result<(), StoreError> {
    let mut chunk = if busy { BUSY_CHUNK } else { CHUNK };
    loop {
        let backlog = {
            let _turn = turns.take().await;
            store.index_for_search(chunk).await?
        };
        if backlog.is_empty() || tasks.is_stopping() {
            return Ok(());
        }
        tokio::task::yield_now().await;
        // While messages come in, at least as many as came since the last
        // chunk: the indexer keeps up with any rate the writer does.
        chunk = match backlog.newest - newest {
            0 => CHUNK,
            arrived => arrived.clamp(BUSY_CHUNK, CHUNK),
        };
        newest = backlog.newest;
    }
}
