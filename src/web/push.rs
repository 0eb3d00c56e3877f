//! Web Push's routes: the server's VAPID public key, a browser's push
//! subscription kept for this session or forgotten (JSON, with the session
//! cookie, state changes under the cross-origin rule), and the service
//! worker that shows the pushes, served at the site's root so that its
//! scope is the whole site.

use std::path::Path;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_http::{services::ServeFile, set_header::SetResponseHeader};

use super::{
    AppState,
    json::{ApiError, Body},
    rooms::asker,
};
use crate::{accounts::AuthSession, domain::push::SubscriptionKeys, push::SubscribeError};

/// `GET /api/push/key`: `{"publicKey"}`, base64url of the uncompressed P-256 point.
pub async fn key(State(state): State<AppState>, auth: AuthSession) -> Result<Response, ApiError> {
    asker(&auth)?;
    Ok(Json(serde_json::json!({ "publicKey": state.push.public_key() })).into_response())
}

/// A browser's `PushSubscription`, as its `toJSON()` writes it (other
/// fields, such as `expirationTime`, are ignored).
#[derive(Debug, Deserialize)]
pub struct Subscription {
    endpoint: Option<String>,
    keys: Option<Keys>,
}

#[derive(Debug, Deserialize)]
pub struct Keys {
    p256dh: Option<String>,
    auth: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::Endpoint(e) => invalid(e.to_string()),
            SubscribeError::NotAllowed => ApiError::unauthorized(),
            SubscribeError::Store(e) => e.into(),
        }
    }
}

/// `POST /api/push/subscriptions`: 201, the subscription kept for this
/// session (moved to it, if another had it).
pub async fn subscribe(
    State(state): State<AppState>,
    auth: AuthSession,
    body: Result<Body<Subscription>, ApiError>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    let Body(subscription) = body?;
    let Some(endpoint) = subscription.endpoint else {
        return Err(invalid("The subscription has no endpoint."));
    };
    let (Some(p256dh), Some(auth_secret)) =
        subscription.keys.map_or((None, None), |keys| (keys.p256dh, keys.auth))
    else {
        return Err(invalid("The subscription has no keys (keys.p256dh and keys.auth)."));
    };
    let keys = SubscriptionKeys::parse(&p256dh, &auth_secret).map_err(|e| invalid(e.to_string()))?;
    state.push.subscribe(actor, &endpoint, &keys).await?;
    Ok(StatusCode::CREATED.into_response())
}

#[derive(Debug, Deserialize)]
pub struct Unsubscription {
    endpoint: Option<String>,
}

/// `DELETE /api/push/subscriptions` `{"endpoint"}`: 204, this user's
/// subscription forgotten (or none there).
pub async fn unsubscribe(
    State(state): State<AppState>,
    auth: AuthSession,
    body: Result<Body<Unsubscription>, ApiError>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    let Body(gone) = body?;
    let Some(endpoint) = gone.endpoint else {
        return Err(invalid("Say which subscription: {\"endpoint\": …}."));
    };
    state.push.unsubscribe(actor, &endpoint).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /sw.js`: the service worker. A worker controls the pages under the
/// path it is served from, so it is served at the root (not under
/// `/public/`, which would need `Service-Worker-Allowed`); `no-cache`, so a
/// new release's worker is found at the next visit.
pub fn service_worker(public: &Path) -> SetResponseHeader<ServeFile, HeaderValue> {
    SetResponseHeader::overriding(
        ServeFile::new(public.join("sw.js")),
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    )
}
