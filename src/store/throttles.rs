//! Throttles: token buckets in the database, keyed by what they count, so
//! every node sharing the database sees the same attempts.

use super::{Store, StoreError, log::now_millis, on_engine};
use crate::rate::{Allowance, Rate};

impl Store {
    /// How long until `key`'s bucket has a token (zero: one is there now).
    /// Reads only: nothing is taken.
    pub async fn throttle_wait(&self, key: &str, rate: Rate) -> Result<std::time::Duration, StoreError> {
        let stored: Option<(f64, i64)> = on_engine!(self, |pool| {
            sqlx::query_as("SELECT tokens, updated_at FROM throttles WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(stored.map_or(std::time::Duration::ZERO, |s| Allowance::from(s).wait(rate, now_millis())))
    }

    /// Takes a token from `key`'s bucket: `Ok(())` if there was one, else
    /// how long until there is. Read and written in one transaction, so
    /// concurrent takes on any node never share a token.
    pub async fn throttle_take(
        &self,
        key: &str,
        rate: Rate,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        let now = now_millis();
        let taken = match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let stored: Option<(f64, i64)> =
                    sqlx::query_as("SELECT tokens, updated_at FROM throttles WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                let (verdict, allowance) = take(stored, rate, now);
                sqlx::query(UPSERT)
                    .bind(key)
                    .bind(allowance.tokens)
                    .bind(allowance.updated_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                verdict
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // A row to lock, whether or not the key was seen before.
                sqlx::query("INSERT INTO throttles (key, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(f64::from(rate.burst))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let stored: (f64, i64) =
                    sqlx::query_as("SELECT tokens, updated_at FROM throttles WHERE key = $1 FOR UPDATE")
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await?;
                let (verdict, allowance) = take(Some(stored), rate, now);
                sqlx::query(UPSERT)
                    .bind(key)
                    .bind(allowance.tokens)
                    .bind(allowance.updated_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                verdict
            }
        };
        Ok(taken)
    }

    /// Forgets `key` (a full bucket again).
    pub async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        on_engine!(self, |pool| sqlx::query("DELETE FROM throttles WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Forgets buckets untouched for `age`: refilled, so forgetting changes nothing.
    pub async fn prune_throttles(&self, age: std::time::Duration) -> Result<(), StoreError> {
        let cutoff = now_millis() - age.as_millis() as i64;
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM throttles WHERE updated_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}

const UPSERT: &str = "INSERT INTO throttles (key, tokens, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at";

fn take(stored: Option<(f64, i64)>, rate: Rate, now: i64) -> (Result<(), std::time::Duration>, Allowance) {
    let mut allowance = stored.map_or_else(|| Allowance::full(rate, now), Allowance::from);
    if allowance.try_take(rate, now) {
        (Ok(()), allowance)
    } else {
        (Err(allowance.wait(rate, now)), allowance)
    }
}
