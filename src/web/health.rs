//! `GET /healthz`: 200 when the database takes writes, 503 otherwise.
//!
//! The probe takes the database's write lock (SQLite), which anyone may ask
//! for: so its answer is reused for a second, and callers that arrive while
//! one is running wait for it rather than start their own. A flood of
//! health checks then costs one probe a second.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::store::Store;

/// How long one probe's answer stands.
const FRESH: Duration = Duration::from_secs(1);
/// A probe that takes longer than this is a database in trouble.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct Health {
    store: Store,
    /// The last probe's time and verdict. A tokio Mutex: it is held across
    /// the probe, so concurrent callers queue for its answer.
    last: Arc<Mutex<Option<(Instant, bool)>>>,
}

impl Health {
    pub fn new(store: Store) -> Self {
        Self { store, last: Arc::default() }
    }

    async fn healthy(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = *last
            && at.elapsed() < FRESH
        {
            return verdict;
        }
        let verdict = match tokio::time::timeout(PROBE_TIMEOUT, self.store.check_writable()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health check: the database cannot take writes");
                false
            }
            Err(_) => {
                tracing::warn!("health check: the database did not answer in time");
                false
            }
        };
        *last = Some((Instant::now(), verdict));
        verdict
    }
}

pub async fn healthz(State(health): State<Health>) -> (StatusCode, Json<Value>) {
    if health.healthy().await {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
    }
}
