//! HTTP: the router, its shared state and the layers around it.

mod account;
pub mod activity;
mod admin;
mod api;
mod auth;
pub mod body;
pub mod client;
pub mod deadlines;
pub mod error;
mod files;
mod handshake;
pub mod health;
pub mod host;
mod json;
mod next;
pub mod origin;
mod pages;
pub mod pending;
mod push;
mod rooms;
mod search;
pub mod serve;
mod site;
pub mod sso;
mod ws;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef, MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use axum_login::AuthManagerLayerBuilder;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer, trace::TraceLayer};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

pub use auth::INVALID_LOGIN;
use error::AppError;
use origin::PublicOrigin;

use crate::{
    accounts::Accounts,
    realtime::Realtime,
    sessions::{DatabaseSessions, Endings, SessionPolicy, Sessions},
    store::Store,
};

/// The session cookie's name…
pub const SESSION_COOKIE: &str = "lobby_session";
/// …and with an https public URL: the `__Host-` prefix makes browsers refuse
/// it unless it is Secure, for this host only, and on the whole path, so
/// neither a subdomain nor plain http can plant or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-lobby_session";

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
    pub throttles: crate::accounts::Throttles,
    pub proxies: client::TrustedProxies,
    /// The host names requests may be sent to (`PUBLIC_URL`, `ALLOWED_HOSTS`).
    pub hosts: host::AllowedHosts,
    pub session_policy: SessionPolicy,
    pub health: health::Health,
    /// The configured registration mode (an admin's choice, stored, wins).
    pub registration: crate::domain::RegistrationMode,
    /// The session store itself, to end a session or say which is getting a new id.
    pub sessions: DatabaseSessions,
    /// Carries out here the endings a change made (the database tells the other nodes).
    pub endings: Endings,
    /// Sign-in through GitHub or OpenID Connect, as configured.
    pub sign_in: sso::SignInRoutes,
    /// How many rooms, and who may make them.
    pub rooms: crate::store::RoomLimits,
    /// Files shared in rooms: the storage, and the limits on uploads.
    pub files: crate::files::Files,
    /// Web Push: the VAPID key and subscriptions.
    pub push: crate::push::Push,
    /// SQLite's search indexer, for a search to catch it up first.
    pub search_indexer: crate::search_indexer::SearchIndexer,
}

pub struct SessionSettings {
    pub store: Sessions,
    pub policy: SessionPolicy,
    /// The public URL is https: the cookie is Secure and `__Host-` prefixed,
    /// and browsers are told to use https only (HSTS).
    pub secure: bool,
}

pub fn router(state: AppState, sessions: SessionSettings) -> Router {
    // Logged-in sessions get an explicit expiry (see `activity`); this one is
    // for the rest, which are saved only if something is stored in them.
    let idle = time::Duration::try_from(sessions.policy.idle).unwrap_or(time::Duration::days(1));
    let session_layer = SessionManagerLayer::new(sessions.store)
        .with_name(if sessions.secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE })
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_secure(sessions.secure)
        .with_expiry(Expiry::OnInactivity(idle));
    let auth_layer = AuthManagerLayerBuilder::new(state.accounts.clone(), session_layer).build();

    let with_session = Router::new()
        .route("/", get(site::home))
        .route("/login", post(auth::login))
        .route("/register", post(auth::register))
        .route("/profile", get(site::profile))
        .route("/chat", get(site::chat))
        .route("/chat/{id}", get(site::chat_room))
        .route("/join/{token}", get(site::join))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/password/set", post(account::set_password))
        .route("/account/identities/unlink", post(account::unlink))
        .route("/auth/{provider}", get(sso::begin))
        .route("/auth/{provider}/callback", get(sso::callback))
        .route("/account/sessions/end", post(account::end_session))
        .route("/admin", get(admin::page))
        .route("/admin/users/ban", post(admin::ban))
        .route("/admin/users/unban", post(admin::unban))
        .route("/admin/users/role", post(admin::set_role))
        .route("/admin/registration", post(admin::registration))
        .route("/admin/invites", post(admin::create_invite))
        .route("/admin/invites/revoke", post(admin::revoke_invite))
        .route("/admin/rooms/archive", post(admin::archive_room))
        .route("/logout", get(auth::logout).post(auth::logout))
        .route("/ws", get(ws::upgrade))
        .route("/api/messages", get(api::messages))
        .route("/api/rooms", get(rooms::list).post(rooms::create))
        .route("/api/rooms/{id}", get(rooms::get).patch(rooms::update).delete(rooms::archive))
        .route("/api/rooms/{id}/join", post(rooms::join))
        .route("/api/rooms/{id}/leave", post(rooms::leave))
        .route("/api/rooms/{id}/members", get(rooms::members).post(rooms::add_member))
        .route("/api/rooms/{id}/members/{username}", delete(rooms::remove_member))
        .route("/api/rooms/{id}/level", put(rooms::level))
        .route("/api/direct", post(rooms::direct))
        .route("/api/search", get(search::search))
        .merge(files::routes(&state))
        .route("/api/push/key", get(push::key))
        .route("/api/push/subscriptions", post(push::subscribe).delete(push::unsubscribe))
        .fallback(site::not_found)
        .layer(middleware::from_fn_with_state(sessions.policy, activity::touch))
        .layer(auth_layer)
        .layer(middleware::map_response(session_store_failure));

    // Health and static files need no session: keep them out of its layers.
    let without_session = Router::new().route("/healthz", get(health::healthz));
    let without_session = without_session.route_service("/sw.js", push::service_worker(&public_dir()));
    #[cfg(feature = "autobahn")]
    let without_session = without_session.route("/autobahn", get(ws::autobahn));
    let without_session =
        without_session.nest_service("/public", ServeDir::new(public_dir()).fallback(get(site::not_found)));

    let proxies = state.proxies.clone();
    // The host guard runs first: a request for another host reaches nothing.
    let app = with_session
        .merge(without_session)
        .layer(middleware::from_fn_with_state(state.origin.clone(), origin::guard))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.hosts.clone(), host::guard));
    with_security_headers(app, sessions.secure)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |request: &Request| request_span(request, &proxies)),
        )
        .with_state(state)
}

/// Headers that tell browsers to run only our own script and styles (no
/// inline code, so injected markup cannot run), not to sniff types, not to
/// frame the pages, not to leak paths to other sites, to keep our windows
/// away from other sites' (COOP), and, behind https, to use nothing else.
fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>, https: bool) -> Router<S> {
    const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let mut headers = vec![
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("referrer-policy"), "same-origin"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    if https {
        headers.push((header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"));
    }
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
