//! Read markers: the newest message of a room each member has seen, kept on
//! their membership (the lobby's on a row made for it when first needed).
//! They only move forward.

use super::{Store, StoreError, on_engine};
use crate::domain::LOBBY;

impl Store {
    /// The user's marker in `room` (0: nothing read yet, or not a member).
    pub async fn read_marker(&self, user_id: i64, room: i64) -> Result<i64, StoreError> {
        let marker: Option<i64> = on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT last_read FROM memberships WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(marker.unwrap_or(0))
    }

    /// Moves each (user, room) marker forward to the given id (never back).
    /// A room the user is no longer in keeps no marker.
    pub async fn advance_read_markers(&self, markers: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        const LOBBY_MARKER: &str = "INSERT INTO memberships (room_id, user_id, level, last_read, joined_at)
             VALUES ($2, $1, 'mentions', $3, 0)
             ON CONFLICT (room_id, user_id) DO UPDATE SET last_read =
                CASE WHEN excluded.last_read > memberships.last_read THEN excluded.last_read
                     ELSE memberships.last_read END";
        const ROOM_MARKER: &str =
            "UPDATE memberships SET last_read = $3 WHERE user_id = $1 AND room_id = $2 AND last_read < $3";
        on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (user_id, room, last_read) in markers {
                let sql = if *room == LOBBY { LOBBY_MARKER } else { ROOM_MARKER };
                sqlx::query(sql).bind(user_id).bind(room).bind(last_read).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }
}
