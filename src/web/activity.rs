//! A request on a logged-in session is activity: it keeps the session from
//! idling out (see `sessions::policy`). And what it answers is for this
//! user only, so no cache may keep it (`no-store`), unless the route said
//! how it may be kept (a file: `private, no-cache`).

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tower_sessions::Session;

use crate::sessions::SessionPolicy;

/// Middleware, on every route with a session.
pub async fn touch(
    State(policy): State<SessionPolicy>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let logged_in = policy.seen(&session).await;
    let mut response = next.run(request).await;
    if logged_in && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
