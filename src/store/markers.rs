//! Read markers: the newest message each user has seen. They only move forward.

use super::{Store, StoreError, on_engine};

impl Store {
    /// The user's marker (0: nothing read yet).
    pub async fn read_marker(&self, user_id: i64) -> Result<i64, StoreError> {
        let marker: Option<i64> = on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT last_read FROM read_markers WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(marker.unwrap_or(0))
    }

    /// Moves each user's marker forward to the given id (never back).
    pub async fn advance_read_markers(&self, markers: &[(i64, i64)]) -> Result<(), StoreError> {
        const ADVANCE: &str = "INSERT INTO read_markers (user_id, last_read) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET last_read =
                CASE WHEN excluded.last_read > read_markers.last_read THEN excluded.last_read
                     ELSE read_markers.last_read END";
        on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (user_id, last_read) in markers {
                sqlx::query(ADVANCE).bind(user_id).bind(last_read).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }
}
