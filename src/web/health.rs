use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::store::Store;

/// 200 when the database takes a write, 503 otherwise. Bounded in time so a
/// load balancer's probe gets an answer even when the database hangs.
pub async fn healthz(State(store): State<Store>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(Duration::from_secs(3), store.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}
