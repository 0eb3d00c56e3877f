//! HTTP: the router, its shared state and the layers around it.

mod auth;
pub mod client;
pub mod error;
mod health;
mod next;
pub mod origin;
mod pages;
mod site;
mod ws;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef, MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use axum_login::AuthManagerLayerBuilder;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer, trace::TraceLayer};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

pub use auth::INVALID_LOGIN;
use error::AppError;
use origin::PublicOrigin;

use crate::{accounts::Accounts, realtime::Realtime, session_cache::Sessions, store::Store};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lobby_session";

/// Forms are a username and a password of at most 1 KiB: 16 KiB is plenty.
const FORM_BODY_LIMIT: usize = 16 * 1024;

/// What every handler may reach. Each field is cheap to clone (handles to
/// shared state), as axum clones the state per request.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Store,
    pub accounts: Accounts,
    pub origin: PublicOrigin,
    pub realtime: Realtime,
    pub login_throttle: crate::accounts::LoginThrottle,
    pub proxies: client::TrustedProxies,
}

pub struct SessionSettings {
    pub store: Sessions,
    pub lifetime: std::time::Duration,
    /// Mark the cookie Secure (the public URL is https).
    pub secure: bool,
}

pub fn router(state: AppState, sessions: SessionSettings) -> Router {
    let lifetime = time::Duration::try_from(sessions.lifetime).unwrap_or(time::Duration::days(7));
    let session_layer = SessionManagerLayer::new(sessions.store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_secure(sessions.secure)
        .with_expiry(Expiry::OnInactivity(lifetime));
    let auth_layer = AuthManagerLayerBuilder::new(state.accounts.clone(), session_layer).build();

    let with_session = Router::new()
        .route("/", get(site::home))
        .route("/login", post(auth::login))
        .route("/register", post(auth::register))
        .route("/profile", get(site::profile))
        .route("/chat", get(site::chat))
        .route("/logout", get(auth::logout).post(auth::logout))
        .route("/ws", get(ws::upgrade))
        .fallback(site::not_found)
        .layer(auth_layer)
        .layer(middleware::map_response(session_store_failure));

    // Health and static files need no session: keep them out of its layers.
    let without_session = Router::new()
        .route("/healthz", get(health::healthz))
        .nest_service("/public", ServeDir::new(public_dir()).fallback(get(site::not_found)));

    let proxies = state.proxies.clone();
    let app = with_session
        .merge(without_session)
        .layer(middleware::from_fn_with_state(state.origin.clone(), origin::guard))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT));
    with_security_headers(app)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |request: &Request| request_span(request, &proxies)),
        )
        .with_state(state)
}

/// Headers that tell browsers to run only our own script and styles (no
/// inline code, so injected markup cannot run), not to sniff types, not to
/// frame the pages, and not to leak paths to other sites.
fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("referrer-policy"), "same-origin"),
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)))
    })
}

/// The session layers answer a failing store (the database) with a bare,
/// empty 500. Only they do that (our own errors always carry a page), so such
/// a response means "database unavailable": give it our 503 page instead.
async fn session_store_failure(response: Response) -> Response {
    let bare = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if bare { AppError::Unavailable("the session store failed".into()).into_response() } else { response }
}

/// One span per request, named by the matched route (not the raw path, which
/// would make every `/public/…` file its own span name), with the client's
/// address (behind a trusted proxy, the one it forwarded).
fn request_span(request: &Request, proxies: &client::TrustedProxies) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map_or("(unmatched)", |p| p.as_str());
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| proxies.client(info.0.ip(), request.headers()));
    tracing::info_span!("request", method = %request.method(), route, client = ?client)
}

/// `public/` beside the crate when run from a checkout; otherwise relative to
/// the working directory.
fn public_dir() -> std::path::PathBuf {
    let beside_crate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("public");
    if beside_crate.is_dir() { beside_crate } else { "public".into() }
}
