//! SQLite's search indexes behind the log: which messages they hold (the
//! cursor of migration 20261205600001), and indexing the next ones, many to
//! a transaction. PostgreSQL's indexes are generated columns, in step with
//! every change, so on PostgreSQL there is never anything to index.

use super::{Store, StoreError};

/// How far the indexes are behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Every message up to this id is indexed, none after it.
    pub indexed_to: i64,
    /// The newest message's id.
    pub newest: i64,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.indexed_to >= self.newest
    }
}

impl Store {
    /// How far the search indexes are behind (one cheap read, no lock).
    pub async fn search_backlog(&self) -> Result<Backlog, StoreError> {
        match self {
            Store::Sqlite(pool) => {
                let (indexed_to, newest) = sqlx::query_as(
                    "SELECT (SELECT indexed_to FROM search_cursor), (SELECT coalesce(max(id), 0) FROM messages)",
                )
                .fetch_one(pool)
                .await?;
                Ok(Backlog { indexed_to, newest })
            }
            Store::Postgres(_) => Ok(Backlog { indexed_to: 0, newest: 0 }),
        }
    }

    /// Indexes the next `at_most` messages after the cursor (deleted ones
    /// are passed over, edited ones go in by their text now) and moves the
    /// cursor past them, in one transaction; how far behind the indexes
    /// still are, as that transaction saw it.
    pub async fn index_for_search(&self, at_most: i64) -> Result<Backlog, StoreError> {
        let Store::Sqlite(pool) = self else { return Ok(Backlog { indexed_to: 0, newest: 0 }) };
        // The write lock from the start: the cursor read is the one the
        // triggers of an edit will see.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let (indexed_to, upto, newest): (i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT indexed_to FROM search_cursor),
                    (SELECT max(id) FROM (SELECT id FROM messages
                       WHERE id > (SELECT indexed_to FROM search_cursor) ORDER BY id LIMIT $1)),
                    (SELECT coalesce(max(id), 0) FROM messages)",
        )
        .bind(at_most)
        .fetch_one(&mut *tx)
        .await?;
        let Some(upto) = upto else { return Ok(Backlog { indexed_to, newest }) };
        for sql in [
            "INSERT INTO search_words (rowid, words, room_id) SELECT id, words, room_id FROM search_words_source
               WHERE id > (SELECT indexed_to FROM search_cursor) AND id <= $1",
            "INSERT INTO search_grams (rowid, grams, room_id) SELECT id, grams, room_id FROM search_grams_source
               WHERE id > (SELECT indexed_to FROM search_cursor) AND id <= $1",
            "UPDATE search_cursor SET indexed_to = $1",
        ] {
            sqlx::query(sql).bind(upto).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Backlog { indexed_to: upto, newest })
    }
}
