//! A push service stand-in, with the browsers behind it: what a browser's
//! push service (Mozilla's autopush, Google's FCM) checks of a push, and
//! what the browser does with it. Each [`Browser`] has its own key pair and
//! auth secret (its subscription) and an endpoint on this service. A push
//! must carry a VAPID token (RFC 8292: an ES256 JWT signed by the server's
//! public key, the one `k=` names and `GET /api/push/key` gives, for this
//! service's origin, not expired, with a `mailto:` or https `sub`), a `TTL`
//! and `Content-Encoding: aes128gcm`; its body is decrypted (RFC 8291) with
//! the browser's private key and auth secret, and must be JSON. A push that
//! fails any of these is recorded as a problem and answered 400. The answer
//! to a good one is chosen per browser: 201, 404, 410, 500, a redirect, or
//! none ever.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use p256::{
    SecretKey,
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    elliptic_curve::{rand_core::OsRng, sec1::ToEncodedPoint},
};
use serde_json::Value;

/// How the service answers a push that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Created,
    NotFound,
    Gone,
    Error,
    /// 307 to another path of this service (which records any request).
    Redirect,
    /// Never: the request hangs until the sender gives up.
    Never,
}

/// A push as the browser got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload: Value,
    pub ttl: u64,
    pub topic: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State_ {
    /// Every request to a browser's endpoint, good or not.
    hits: HashMap<String, usize>,
    received: HashMap<String, Vec<Received>>,
    /// Answers to come, per browser (the last one stays).
    answers: HashMap<String, VecDeque<Answer>>,
    keys: HashMap<String, (SecretKey, [u8; 16])>,
    problems: Vec<String>,
    /// Requests that followed a redirect.
    redirected: usize,
}

#[derive(Clone)]
pub struct PushService {
    pub base: String,
    /// The server's VAPID public key (base64url), as `GET /api/push/key` gave it.
    server_key: Arc<Mutex<Option<String>>>,
    state: Arc<Mutex<State_>>,
    _task: Arc<tokio::task::JoinHandle<()>>,
}

/// One browser's subscription at the service.
#[derive(Debug, Clone)]
pub struct Browser {
    pub id: String,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl Browser {
    /// What `PushSubscription.toJSON()` gives.
    pub fn subscription(&self) -> Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
        })
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

impl PushService {
    pub async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state: Arc<Mutex<State_>> = Arc::default();
        let server_key: Arc<Mutex<Option<String>>> = Arc::default();
        let shared = Shared { base: base.clone(), state: state.clone(), server_key: server_key.clone() };
        let router = Router::new()
            .route("/push/{id}", post(push))
            .route("/moved/{id}", post(moved))
            .with_state(shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        PushService { base, server_key, state, _task: Arc::new(task) }
    }

    /// The key the server signs with: pushes signed by another are refused.
    pub fn expect_server_key(&self, key: &str) {
        *self.server_key.lock().unwrap() = Some(key.to_owned());
    }

    /// A new browser, subscribed at this service (its answers: 201).
    pub fn browser(&self) -> Browser {
        let secret = SecretKey::random(&mut OsRng);
        let mut auth = [0u8; 16];
        p256::elliptic_curve::rand_core::RngCore::fill_bytes(&mut OsRng, &mut auth);
        let id = format!("b{}", lobby::token::hex(6));
        let p256dh = b64(secret.public_key().to_encoded_point(false).as_bytes());
        self.state.lock().unwrap().keys.insert(id.clone(), (secret, auth));
        Browser { endpoint: format!("{}/push/{id}", self.base), id, p256dh, auth: b64(&auth) }
    }

    /// From now on the service answers `browser`'s pushes with these, in
    /// order (the last one for every push after).
    pub fn answer(&self, browser: &Browser, answers: &[Answer]) {
        self.state.lock().unwrap().answers.insert(browser.id.clone(), answers.iter().cloned().collect());
    }

    pub fn received(&self, browser: &Browser) -> Vec<Received> {
        self.state.lock().unwrap().received.get(&browser.id).cloned().unwrap_or_default()
    }

    /// Requests to `browser`'s endpoint, answered or not.
    pub fn hits(&self, browser: &Browser) -> usize {
        self.state.lock().unwrap().hits.get(&browser.id).copied().unwrap_or(0)
    }

    pub fn redirected(&self) -> usize {
        self.state.lock().unwrap().redirected
    }

    /// Pushes that failed a check (none, in a passing test).
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// Waits until `browser` got `n` pushes (or `within` passes); returns them.
    pub async fn until_received(&self, browser: &Browser, n: usize, within: Duration) -> Vec<Received> {
        super::eventually(within, || async { self.received(browser).len() >= n }).await;
        let got = self.received(browser);
        assert!(
            got.len() >= n,
            "{} got {} pushes, not {n}; problems: {:?}",
            browser.id,
            got.len(),
            self.problems()
        );
        got
    }
}

#[derive(Clone)]
struct Shared {
    base: String,
    state: Arc<Mutex<State_>>,
    server_key: Arc<Mutex<Option<String>>>,
}

async fn moved(State(shared): State<Shared>) -> StatusCode {
    shared.state.lock().unwrap().redirected += 1;
    StatusCode::CREATED
}

async fn push(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&shared, &id, &headers, &body) {
        Ok(Answer::Created) => {
            (StatusCode::CREATED, [(header::LOCATION, format!("{}/message/{id}", shared.base))])
                .into_response()
        }
        Ok(Answer::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Ok(Answer::Gone) => StatusCode::GONE.into_response(),
        Ok(Answer::Error) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Ok(Answer::Redirect) => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, format!("{}/moved/{id}", shared.base))])
                .into_response()
        }
        Ok(Answer::Never) => std::future::pending().await,
        Err(problem) => (StatusCode::BAD_REQUEST, problem).into_response(),
    }
}

/// Checks a push to browser `id` and records it; the answer to give.
fn answer(shared: &Shared, id: &str, headers: &HeaderMap, body: &[u8]) -> Result<Answer, String> {
    let mut state = shared.state.lock().unwrap();
    *state.hits.entry(id.to_owned()).or_insert(0) += 1;
    let Some((secret, auth)) = state.keys.get(id).cloned() else { return Ok(Answer::NotFound) };
    let expected_key = shared.server_key.lock().unwrap().clone();
    let received = match check(headers, body, &shared.base, expected_key.as_deref(), &secret, &auth) {
        Ok(received) => received,
        Err(problem) => {
            state.problems.push(format!("{id}: {problem}"));
            return Err(problem);
        }
    };
    let answer = match state.answers.get_mut(id) {
        Some(answers) if answers.len() > 1 => answers.pop_front().unwrap(),
        Some(answers) => answers.front().cloned().unwrap_or(Answer::Created),
        None => Answer::Created,
    };
    if answer == Answer::Created {
        state.received.entry(id.to_owned()).or_default().push(received);
    }
    Ok(answer)
}

/// What a push service and then the browser check of one push.
fn check(
    headers: &HeaderMap,
    body: &[u8],
    origin: &str,
    server_key: Option<&str>,
    secret: &SecretKey,
    auth: &[u8; 16],
) -> Result<Received, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ttl: u64 = header("ttl").ok_or("no TTL header")?.parse().map_err(|_| "a TTL that is not a number")?;
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return Err(format!("Content-Encoding {:?}, not aes128gcm", header("content-encoding")));
    }
    let authorization = header("authorization").ok_or("no Authorization")?;
    let (token, key) = authorization
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .ok_or_else(|| format!("not a VAPID authorization: {authorization}"))?;
    if let Some(expected) = server_key
        && key != expected
    {
        return Err(format!("signed with {key}, not the server's key {expected}"));
    }
    verify_jwt(token, key, origin)?;
    let decrypted = web_push_native::decrypt(body.to_vec(), secret, web_push_native::Auth::from_slice(auth))
        .map_err(|e| format!("could not decrypt the payload: {e}"))?;
    let payload: Value =
        serde_json::from_slice(&decrypted).map_err(|e| format!("the payload is not JSON: {e}"))?;
    Ok(Received { payload, ttl, topic: header("topic"), at: Instant::now() })
}

/// RFC 8292 section 2: an ES256 JWT with `aud` the push resource's origin,
/// `exp` within 24 hours, and a `sub` to reach the server's operator.
fn verify_jwt(token: &str, key: &str, origin: &str) -> Result<(), String> {
    let (signed, signature) = token.rsplit_once('.').ok_or("a JWT without a signature")?;
    let (head, claims) = signed.split_once('.').ok_or("a JWT without claims")?;
    let json = |part: &str| -> Result<Value, String> {
        serde_json::from_slice(&unb64(part).ok_or("JWT part not base64url")?).map_err(|e| e.to_string())
    };
    let (head, claims) = (json(head)?, json(claims)?);
    if head["alg"] != "ES256" {
        return Err(format!("JWT alg {}, not ES256", head["alg"]));
    }
    let verifying = VerifyingKey::from_sec1_bytes(&unb64(key).ok_or("k= not base64url")?)
        .map_err(|_| "k= is not a P-256 key")?;
    let signature = Signature::from_slice(&unb64(signature).ok_or("signature not base64url")?)
        .map_err(|_| "the signature is not 64 bytes")?;
    verifying.verify(signed.as_bytes(), &signature).map_err(|_| "the JWT's signature does not verify")?;
    if claims["aud"] != origin {
        return Err(format!("aud {}, not {origin}", claims["aud"]));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 hours of now ({now})"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err(format!("sub {sub:?} is not a mailto: or https: URL"));
    }
    Ok(())
}
