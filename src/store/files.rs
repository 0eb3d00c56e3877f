//! Files shared in rooms, as the database knows them: each file's row (its
//! message's, written in the log's transaction), the objects in the storage
//! no file owns (uploads in progress, deleted messages' files) for the sweep
//! to delete, and each user's uploads of the last hour.
//!
//! The bytes themselves are not here: `crate::files` keeps them in the
//! storage (`STORAGE_URL`) under the object names recorded here.

use std::time::Duration;

use super::{
    Batch, NewMessage, Outcome, Store, StoreError,
    log::{AppendBatch, BeginLog, LogTx, now_millis},
    on_engine,
};
use crate::{
    domain::{FileKind, FileName},
    rate::Rate,
};

const HOUR_MS: i64 = 3_600_000;

/// A file to commit with its message: what was stored, and where.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: FileName,
    pub kind: FileKind,
    pub size: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub object: String,
    pub etag: String,
    /// The thumbnail's object and entity tag, if one was made.
    pub thumbnail: Option<(String, String)>,
}

/// What became of an upload's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Committed: the message's id.
    Appended(i64),
    /// The author's chat allowance is used up for now.
    RateLimited {
        retry_after_ms: i64,
    },
    NotAMember,
    /// `per_hour` uploads in the last hour already; one more is possible this much later.
    TooManyUploads {
        retry_after_ms: i64,
    },
    /// Its objects were swept meanwhile (an upload that outlived every deadline).
    Lost,
}

/// A file as it is served.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredFile {
    pub id: i64,
    pub room_id: i64,
    pub name: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub size: i64,
    pub object: String,
    pub etag: String,
    pub thumbnail: Option<String>,
    pub thumbnail_etag: Option<String>,
}

/// Uploads in the last hour: (how many, the oldest's time).
const UPLOADS: &str = "SELECT count(*), min(at) FROM uploads WHERE user_id = $1 AND at > $2";

/// When one more upload is allowed, given the hour's count and oldest upload.
fn wait_for_upload(count: i64, oldest: Option<i64>, per_hour: u32, now_ms: i64) -> Option<i64> {
    (count >= i64::from(per_hour)).then(|| oldest.map_or(HOUR_MS, |at| at + HOUR_MS - now_ms).max(1))
}

impl Store {
    /// Objects about to be written: unless a file owns them by `due`
    /// from now, the sweep deletes them.
    pub async fn expect_objects(&self, objects: &[&str], due: Duration) -> Result<(), StoreError> {
        let due_at = now_millis() + due.as_millis() as i64;
        on_engine!(self, |pool| {
            for object in objects {
                sqlx::query(
                    "INSERT INTO unowned_objects (object, due_at) VALUES ($1, $2)
                     ON CONFLICT (object) DO UPDATE SET due_at = excluded.due_at",
                )
                .bind(object)
                .bind(due_at)
                .execute(pool)
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Unowned objects due for deletion now, at most `limit`.
    pub async fn due_objects(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar(
                "SELECT object FROM unowned_objects WHERE due_at <= $1 ORDER BY due_at LIMIT $2",
            )
            .bind(now_millis())
            .bind(limit as i64)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Forgets objects that are gone from the storage.
    pub async fn forget_objects(&self, objects: &[&str]) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            for object in objects {
                sqlx::query("DELETE FROM unowned_objects WHERE object = $1")
                    .bind(object)
                    .execute(pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Forgets uploads older than an hour: they no longer count.
    pub async fn prune_uploads(&self) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM uploads WHERE at <= $1")
                .bind(now_millis() - HOUR_MS)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// How long until `user` may upload again (`None`: now), by this node's
    /// clock: a cheap look before a body is read. [`Store::append_file`]
    /// decides, under the log's lock.
    pub async fn upload_wait(&self, user: i64, per_hour: u32) -> Result<Option<Duration>, StoreError> {
        let now = now_millis();
        let (count, oldest): (i64, Option<i64>) = on_engine!(self, |pool| {
            sqlx::query_as(UPLOADS).bind(user).bind(now - HOUR_MS).fetch_one(pool).await
        })?;
        Ok(wait_for_upload(count, oldest, per_hour, now).map(|ms| Duration::from_millis(ms as u64)))
    }

    /// File `id` as it is served (`None`: no such file, or its message was deleted).
    pub async fn file(&self, id: i64) -> Result<Option<StoredFile>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_as(
                "SELECT id, room_id, name, type, size, object, etag, thumbnail, thumbnail_etag
                 FROM files WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Commits an upload's message with its file, in the log's order like
    /// any message: the author's chat allowance and membership are checked
    /// as for any message, and their uploads of the last hour (under the
    /// log's lock, so on every node together) against `per_hour`. The
    /// file's objects stop being unowned in the same transaction.
    pub async fn append_file(
        &self,
        message: NewMessage<'_>,
        file: &NewFile,
        per_hour: u32,
        rate: Rate,
    ) -> Result<UploadOutcome, StoreError> {
        let (user, room) = (message.user_id, message.room);
        let batch = Batch { id: crate::token::hex(16), messages: vec![message], retried: false };
        let mut objects = vec![file.object.as_str()];
        objects.extend(file.thumbnail.as_ref().map(|(object, _)| object.as_str()));
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            let (_, now) = tx.lock_head().await?;
            let (count, oldest): (i64, Option<i64>) =
                sqlx::query_as(UPLOADS).bind(user).bind(now - HOUR_MS).fetch_one(&mut *tx).await?;
            if let Some(retry_after_ms) = wait_for_upload(count, oldest, per_hour, now) {
                return Ok(UploadOutcome::TooManyUploads { retry_after_ms });
            }
            let id = match tx.append_batch(&batch, rate).await?.first().copied() {
                Some(Outcome::Appended(id)) => id,
                Some(Outcome::RateLimited { retry_after_ms }) => {
                    return Ok(UploadOutcome::RateLimited { retry_after_ms });
                }
                Some(Outcome::NotAMember) | None => return Ok(UploadOutcome::NotAMember),
            };
            // Owned from now on; if the sweep took them already, the upload is lost.
            for object in &objects {
                let gone = sqlx::query("DELETE FROM unowned_objects WHERE object = $1")
                    .bind(object)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() != 1 {
                    return Ok(UploadOutcome::Lost);
                }
            }
            sqlx::query(
                "INSERT INTO files (message_id, room_id, user_id, name, type, size, width, height,
                                    object, thumbnail, etag, thumbnail_etag, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(id)
            .bind(room)
            .bind(user)
            .bind(file.name.as_str())
            .bind(file.kind.mime())
            .bind(file.size)
            .bind(file.width)
            .bind(file.height)
            .bind(file.object.as_str())
            .bind(file.thumbnail.as_ref().map(|(object, _)| object.as_str()))
            .bind(file.etag.as_str())
            .bind(file.thumbnail.as_ref().map(|(_, etag)| etag.as_str()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO uploads (user_id, at) VALUES ($1, $2)")
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(UploadOutcome::Appended(id))
        })?)
    }
}

/// In a delete's transaction, with the message's id: its files stop being
/// owned (the sweep deletes their objects at once) and their rows go.
pub(super) const DISOWN: [&str; 3] = [
    "INSERT INTO unowned_objects (object, due_at) SELECT object, 0 FROM files WHERE message_id = $1
     ON CONFLICT (object) DO UPDATE SET due_at = 0",
    "INSERT INTO unowned_objects (object, due_at)
     SELECT thumbnail, 0 FROM files WHERE message_id = $1 AND thumbnail IS NOT NULL
     ON CONFLICT (object) DO UPDATE SET due_at = 0",
    "DELETE FROM files WHERE message_id = $1",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_counts_from_its_oldest_upload() {
        assert_eq!(wait_for_upload(59, Some(0), 60, 1000), None);
        assert_eq!(wait_for_upload(60, Some(1000), 60, 2000), Some(HOUR_MS - 1000));
        assert_eq!(wait_for_upload(0, None, 0, 0), Some(HOUR_MS));
    }
}
