//! A stand-in for GitHub, written to GitHub's documentation ("Authorizing
//! OAuth apps", the REST API's "Users" and "Emails"), on 127.0.0.1:0. Lobby
//! reaches it through `GITHUB_URL` and `GITHUB_API_URL`, both its `url`.
//!
//! - `GET /login/oauth/authorize`: GitHub would show its consent page; the
//!   stand-in's user (see [`GitHub::sign_in_as`]) approves at once, or says
//!   no (`error=access_denied`) after [`GitHub::deny`]. 302 to `redirect_uri`
//!   (or the registered callback URL) with `code` and `state`. PKCE: only
//!   `S256`, as GitHub.
//! - `POST /login/oauth/access_token`: form parameters `client_id`,
//!   `client_secret`, `code`, `redirect_uri`, `code_verifier`. Errors come
//!   with 200, as GitHub's do (`incorrect_client_credentials`,
//!   `redirect_uri_mismatch`, `bad_verification_code`); JSON when asked with
//!   `Accept: application/json`, else form-encoded. A code works once, for
//!   10 minutes, and, when it was issued with a `code_challenge`, only with
//!   the verifier whose S256 is that challenge (GitHub does not document
//!   the error for a wrong verifier; `bad_verification_code` is assumed).
//! - `GET /user`, `GET /user/emails`: with `Authorization: Bearer TOKEN` (or
//!   `token TOKEN`) and a `User-Agent`, as the REST API requires; 401 "Bad
//!   credentials" otherwise. `/user/emails` needs the `user:email` scope.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "Iv1.0123456789abcdef";
pub const CLIENT_SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

pub struct GitHub {
    /// The stand-in's origin: `GITHUB_URL` and `GITHUB_API_URL` both.
    pub url: String,
    state: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

/// A GitHub account.
#[derive(Clone)]
pub struct Account {
    pub id: u64,
    pub login: &'static str,
    pub name: Option<&'static str>,
    /// The public email, if the user made one public.
    pub email: Option<&'static str>,
    pub emails: Vec<(&'static str, bool, bool)>, // (address, primary, verified)
}

/// What the stand-in saw, for tests to check what Lobby sent.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub authorize: Vec<HashMap<String, String>>,
    /// The token requests' form parameters.
    pub token: Vec<HashMap<String, String>>,
    /// Whether a token request carried an `Authorization` header.
    pub token_basic_auth: bool,
    pub user: usize,
    pub emails: usize,
}

struct Inner {
    accounts: HashMap<&'static str, Account>,
    signed_in: &'static str,
    deny: bool,
    callback_url: Option<String>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, (&'static str, String)>, // token -> (login, scope)
    seen: Seen,
}

struct Grant {
    login: &'static str,
    scope: String,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    issued: Instant,
}

pub fn octocat() -> Account {
    Account {
        id: 583231,
        login: "octocat",
        name: Some("The Octocat"),
        email: None,
        emails: vec![("octocat@users.github.example", false, true), ("octo@github.example", true, true)],
    }
}

pub fn hubot() -> Account {
    Account { id: 480938, login: "hubot", name: None, email: Some("hubot@github.example"), emails: vec![] }
}

impl GitHub {
    /// Starts the stand-in with octocat signed in and hubot known.
    /// `callback_url` is the OAuth app's registered callback URL, if the test
    /// wants it enforced as GitHub does.
    pub async fn start(callback_url: Option<&str>) -> Self {
        let accounts = [octocat(), hubot()].into_iter().map(|a| (a.login, a)).collect();
        let state = Arc::new(Mutex::new(Inner {
            accounts,
            signed_in: "octocat",
            deny: false,
            callback_url: callback_url.map(str::to_owned),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            seen: Seen::default(),
        }));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url: format!("http://{addr}"), state, task }
    }

    /// Another GitHub account, to sign in as.
    pub fn add_account(&self, account: Account) {
        self.state.lock().unwrap().accounts.insert(account.login, account);
    }

    /// The GitHub user who approves the next authorizations.
    pub fn sign_in_as(&self, login: &'static str) {
        self.state.lock().unwrap().signed_in = login;
    }

    /// From now on the user clicks "Cancel" on GitHub's consent page.
    pub fn deny(&self) {
        self.state.lock().unwrap().deny = true;
    }

    pub fn seen(&self) -> Seen {
        self.state.lock().unwrap().seen.clone()
    }

    /// Follows an authorization URL as the signed-in user's browser would,
    /// up to the redirect back to Lobby, whose URL it returns.
    pub async fn approve(&self, authorization_url: &url::Url) -> url::Url {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = client.get(authorization_url.as_str()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "GitHub redirects back with 302");
        let location = res.headers()[header::LOCATION].to_str().unwrap();
        url::Url::parse(location).unwrap()
    }
}

impl Drop for GitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RFC 7636's S256: BASE64URL(SHA256(verifier)), without padding.
fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// GitHub's rule for `redirect_uri`: same host and port as the callback URL,
/// and a path under the callback URL's path.
fn redirect_allowed(callback: &str, redirect: &str) -> bool {
    let (Ok(c), Ok(r)) = (url::Url::parse(callback), url::Url::parse(redirect)) else { return false };
    c.scheme() == r.scheme()
        && c.host_str() == r.host_str()
        && c.port_or_known_default() == r.port_or_known_default()
        && r.path().starts_with(c.path())
}

async fn authorize(
    State(state): State<Arc<Mutex<Inner>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.authorize.push(q.clone());
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let redirect = match (&s.callback_url, q.get("redirect_uri")) {
        (Some(callback), Some(r)) if !redirect_allowed(callback, r) => {
            let mut to = url::Url::parse(callback).unwrap();
            to.query_pairs_mut()
                .append_pair("error", "redirect_uri_mismatch")
                .append_pair(
                    "error_description",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                )
                .append_pair("state", q.get("state").map_or("", String::as_str));
            return Redirect::to(to.as_str()).into_response_302();
        }
        (_, Some(r)) => r.clone(),
        (Some(callback), None) => callback.clone(),
        (None, None) => return (StatusCode::BAD_REQUEST, "no redirect_uri").into_response(),
    };
    if q.contains_key("code_challenge") && q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "code_challenge_method must be S256").into_response();
    }
    let mut to = url::Url::parse(&redirect).unwrap();
    if s.deny {
        to.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user has denied your application access.")
            .append_pair(
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
            );
    } else {
        // GitHub's codes are 20 hex digits.
        let code = lobby::token::hex(10);
        let grant = Grant {
            login: s.signed_in,
            scope: q.get("scope").cloned().unwrap_or_default(),
            redirect_uri: q.get("redirect_uri").cloned(),
            code_challenge: q.get("code_challenge").cloned(),
            issued: Instant::now(),
        };
        to.query_pairs_mut().append_pair("code", &code);
        s.codes.insert(code, grant);
    }
    if let Some(st) = q.get("state") {
        to.query_pairs_mut().append_pair("state", st);
    }
    Redirect::to(to.as_str()).into_response_302()
}

trait Found {
    fn into_response_302(self) -> Response;
}

impl Found for Redirect {
    /// GitHub redirects with 302 Found.
    fn into_response_302(self) -> Response {
        let mut res = self.into_response();
        *res.status_mut() = StatusCode::FOUND;
        res
    }
}

async fn access_token(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| form.get(name).map(String::as_str);
    let json_wanted = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut s = state.lock().unwrap();
    s.seen.token.push(form.clone());
    s.seen.token_basic_auth |= headers.contains_key(header::AUTHORIZATION);
    let answer = |fields: Value| -> Response {
        if json_wanted {
            Json(fields).into_response()
        } else {
            let map = fields.as_object().unwrap();
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in map {
                body.append_pair(k, v.as_str().unwrap_or_default());
            }
            ([(header::CONTENT_TYPE, "application/x-www-form-urlencoded")], body.finish()).into_response()
        }
    };
    let error = |code: &str, description: &str| {
        json!({
            "error": code,
            "error_description": description,
            "error_uri": format!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}", code.replace('_', "-")),
        })
    };
    if param("client_id") != Some(CLIENT_ID) || param("client_secret") != Some(CLIENT_SECRET) {
        return answer(error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ));
    }
    // A code is gone once presented, right or wrong.
    let Some(grant) = param("code").and_then(|c| s.codes.remove(c)) else {
        return answer(error("bad_verification_code", "The code passed is incorrect or expired."));
    };
    if grant.issued.elapsed() > Duration::from_secs(600) {
        return answer(error("bad_verification_code", "The code passed is incorrect or expired."));
    }
    if grant.redirect_uri.is_some() && param("redirect_uri") != grant.redirect_uri.as_deref() {
        return answer(error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge
        && param("code_verifier").map(s256).as_ref() != Some(challenge)
    {
        return answer(error("bad_verification_code", "The code passed is incorrect or expired."));
    }
    let token = format!("gho_{}", lobby::token::hex(18));
    s.tokens.insert(token.clone(), (grant.login, grant.scope.clone()));
    answer(json!({ "access_token": token, "scope": grant.scope.replace(' ', ","), "token_type": "bearer" }))
}

/// GitHub's refusals of an API request.
enum Refusal {
    NoUserAgent,
    BadCredentials,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoUserAgent => (
                StatusCode::FORBIDDEN,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            )
                .into_response(),
            Refusal::BadCredentials => (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401" })),
            )
                .into_response(),
        }
    }
}

/// The account and scopes a request's token stands for.
fn authenticated(s: &Inner, headers: &HeaderMap) -> Result<(Account, String), Refusal> {
    if !headers.contains_key(header::USER_AGENT) {
        return Err(Refusal::NoUserAgent);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")));
    token
        .and_then(|t| s.tokens.get(t))
        .map(|(login, scope)| (s.accounts[login].clone(), scope.clone()))
        .ok_or(Refusal::BadCredentials)
}

async fn user(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.user += 1;
    let (a, _) = match authenticated(&s, &headers) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    Json(json!({
        "login": a.login,
        "id": a.id,
        "node_id": format!("MDQ6VXNlcj{}", a.id),
        "avatar_url": format!("https://avatars.githubusercontent.example/u/{}?v=4", a.id),
        "html_url": format!("https://github.example/{}", a.login),
        "type": "User",
        "site_admin": false,
        "name": a.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": a.email,
        "hireable": null,
        "bio": null,
        "public_repos": 8,
        "followers": 20,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2025-01-22T12:00:00Z",
    }))
    .into_response()
}

async fn emails(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.emails += 1;
    let (a, scope) = match authenticated(&s, &headers) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    if !scope.split([' ', ',']).any(|sc| sc == "user:email" || sc == "user") {
        return (StatusCode::NOT_FOUND, Json(json!({ "message": "Not Found" }))).into_response();
    }
    let list: Vec<Value> = a
        .emails
        .iter()
        .map(|(email, primary, verified)| {
            json!({ "email": email, "primary": primary, "verified": verified, "visibility": if *primary { Some("private") } else { None } })
        })
        .collect();
    Json(list).into_response()
}
