//! `lobby::sso` against real providers started here, never the internet:
//! the GitHub stand-in (`common::github`, always) and oidc-provider under
//! node (`common::oidc`: those tests are ignored unless asked for, see
//! there). What a callback must prove before anyone is signed in: the
//! state, the code with its PKCE verifier, the ID token's signature, issuer,
//! audience, expiry and nonce; and what a user is told when it does not.

mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::{
    github::{self, GitHub},
    oidc::{self, OidcProvider},
};
use lobby::{
    config::{Secret, SignIn},
    sso::{Callback, PROVIDER_TIMEOUT, Provider, ProviderIdentity, STATE_TTL, Sso, SsoError},
};
use time::OffsetDateTime;
use url::Url;

const GITHUB_CALLBACK: &str = "http://127.0.0.1:3000/auth/github/callback";
const OIDC_CALLBACK: &str = "http://127.0.0.1:3000/auth/oidc/callback";

fn no_sign_in() -> SignIn {
    SignIn {
        github_client_id: None,
        github_client_secret: None,
        github_url: "https://github.com".into(),
        github_api_url: "https://api.github.com".into(),
        oidc_issuer: None,
        oidc_client_id: None,
        oidc_client_secret: None,
        oidc_name: None,
    }
}

/// `TEST_LOG=1` shows what Lobby logs (why each failure failed).
fn log() {
    if std::env::var_os("TEST_LOG").is_some() {
        lobby::telemetry::init();
    }
}

fn github_at(url: &str, secret: &str) -> Sso {
    log();
    let settings = SignIn {
        github_client_id: Some(github::CLIENT_ID.into()),
        github_client_secret: Some(Secret::new(secret)),
        github_url: url.into(),
        github_api_url: url.into(),
        ..no_sign_in()
    };
    Sso::from_config(&settings).unwrap()
}

fn oidc_at(issuer: &str, secret: &str) -> Sso {
    log();
    let settings = SignIn {
        oidc_issuer: Some(issuer.into()),
        oidc_client_id: Some(oidc::CLIENT_ID.into()),
        oidc_client_secret: Some(Secret::new(secret)),
        oidc_name: Some("School".into()),
        ..no_sign_in()
    };
    Sso::from_config(&settings).unwrap()
}

fn callback_of(redirect: &Url) -> Callback {
    let q: HashMap<String, String> = redirect.query_pairs().into_owned().collect();
    Callback {
        code: q.get("code").cloned(),
        state: q.get("state").cloned(),
        error: q.get("error").cloned(),
        iss: q.get("iss").cloned(),
    }
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn redirect_uri(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// A port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts connections and never answers.
async fn hanging_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// Asserts `took` is the provider timeout, not much more and not less.
fn assert_bounded(took: Duration) {
    assert!(took >= PROVIDER_TIMEOUT - Duration::from_millis(100), "gave up early: {took:?}");
    assert!(took < PROVIDER_TIMEOUT + Duration::from_secs(3), "waited too long: {took:?}");
}

// ---- GitHub, through the stand-in ----

#[tokio::test]
async fn github_login_with_pkce_and_the_secret_checked_by_github() {
    let gh = GitHub::start(Some(GITHUB_CALLBACK)).await;
    let sso = github_at(&gh.url, github::CLIENT_SECRET);
    assert!(sso.enabled(Provider::GitHub) && !sso.enabled(Provider::Oidc));
    assert_eq!(sso.label(Provider::GitHub), Some("GitHub"));

    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    assert!(url.as_str().starts_with(&format!("{}/login/oauth/authorize?", gh.url)), "{url}");
    let q = query(&url);
    assert_eq!(q["client_id"], github::CLIENT_ID);
    assert_eq!(q["redirect_uri"], GITHUB_CALLBACK);
    assert_eq!(q["scope"], "read:user user:email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q.contains_key("client_secret"));

    let back = gh.approve(&url).await;
    assert!(back.as_str().starts_with(GITHUB_CALLBACK));
    let identity = sso.finish(Provider::GitHub, pending, &callback_of(&back)).await.unwrap();
    assert_eq!(
        identity,
        ProviderIdentity {
            provider: Provider::GitHub,
            issuer: gh.url.clone(),
            subject: "583231".into(),
            username_hint: Some("octocat".into()),
            display_name: Some("The Octocat".into()),
            // Not public on the profile: the primary one from /user/emails.
            email: Some("octo@github.example".into()),
            email_verified: true,
            avatar_url: Some("https://avatars.githubusercontent.example/u/583231?v=4".into()),
        }
    );
    let seen = gh.seen();
    let token = &seen.token[0];
    assert_eq!(
        token["client_secret"],
        github::CLIENT_SECRET,
        "the secret goes in the body, as GitHub documents"
    );
    assert_eq!(token["redirect_uri"], GITHUB_CALLBACK);
    assert!(token.contains_key("code_verifier"), "PKCE verifier sent (and checked by the stand-in)");
    assert!(!seen.token_basic_auth);
    assert_eq!((seen.user, seen.emails), (1, 1));

    // A public email needs no second call; a user without a name has none.
    gh.sign_in_as("hubot");
    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    let back = gh.approve(&url).await;
    let identity = sso.finish(Provider::GitHub, pending, &callback_of(&back)).await.unwrap();
    assert_eq!(identity.subject, "480938");
    assert_eq!(identity.username_hint.as_deref(), Some("hubot"));
    assert_eq!(identity.display_name, None);
    assert_eq!(identity.email.as_deref(), Some("hubot@github.example"));
    assert_eq!(gh.seen().emails, 1);
}

#[tokio::test]
async fn github_with_a_wrong_client_secret_is_refused_in_words_for_the_admin() {
    let gh = GitHub::start(None).await;
    let sso = github_at(&gh.url, "not-the-secret");
    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    let back = gh.approve(&url).await;
    let err = sso.finish(Provider::GitHub, pending, &callback_of(&back)).await.unwrap_err();
    assert_eq!(err, SsoError::Refused);
    assert!(err.message("GitHub").contains("Tell the administrator"), "{}", err.message("GitHub"));
    assert_eq!(gh.seen().user, 0, "no token, no user");
}

#[tokio::test]
async fn a_callback_with_another_state_an_expired_one_or_a_used_one_signs_no_one_in() {
    let gh = GitHub::start(None).await;
    let sso = github_at(&gh.url, github::CLIENT_SECRET);
    let redirect = redirect_uri(GITHUB_CALLBACK);

    // Wrong state: the pending login is this session's, the callback is not.
    let (url, pending) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let mut callback = callback_of(&gh.approve(&url).await);
    callback.state = Some("a-state-this-browser-never-got".into());
    let err = sso.finish(Provider::GitHub, pending.clone(), &callback).await.unwrap_err();
    assert_eq!(err, SsoError::BadState);
    assert!(err.is_forged());
    // Nor for the other provider's callback route.
    let err = sso.finish(Provider::Oidc, pending, &callback_of(&gh.approve(&url).await)).await.unwrap_err();
    assert_eq!(err, SsoError::BadState);

    // Expired: more than 10 minutes between begin and callback.
    let (url, pending) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let callback = callback_of(&gh.approve(&url).await);
    let late = OffsetDateTime::now_utc() + STATE_TTL + time::Duration::seconds(5);
    let err = sso.finish_at(Provider::GitHub, pending, &callback, late).await.unwrap_err();
    assert_eq!(err, SsoError::Expired);
    assert!(err.message("GitHub").contains("10 minutes"));

    // Used: the provider takes a code once (that the server gives a state
    // back once is the app's, tested in tests/sso.rs). A kept login is found
    // by its state's hash and comes back whole.
    let before = gh.seen().token.len();
    let (url, pending) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let callback = callback_of(&gh.approve(&url).await);
    assert_eq!(callback.state_hash(), Some(pending.state_hash()));
    let pending = lobby::sso::Pending::unseal(&pending.seal()).unwrap();
    sso.finish(Provider::GitHub, pending.clone(), &callback).await.unwrap();
    let err = sso.finish(Provider::GitHub, pending, &callback).await.unwrap_err();
    assert_eq!(err, SsoError::BadCode, "a replayed code");
    assert_eq!(gh.seen().token.len(), before + 2, "only those two reached the token endpoint");
}

#[tokio::test]
async fn github_bad_codes_and_a_code_from_another_login_are_refused() {
    let gh = GitHub::start(None).await;
    let sso = github_at(&gh.url, github::CLIENT_SECRET);
    let redirect = redirect_uri(GITHUB_CALLBACK);

    let (url, pending) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let mut callback = callback_of(&gh.approve(&url).await);
    callback.code = Some("0000000000deadbeef00".into());
    assert_eq!(sso.finish(Provider::GitHub, pending, &callback).await.unwrap_err(), SsoError::BadCode);

    // An attacker's code slipped into the victim's callback (with the
    // victim's state): PKCE stops it, the code was issued to another verifier.
    let (attacker_url, _attacker) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let attacker_code = callback_of(&gh.approve(&attacker_url).await).code;
    let (victim_url, victim) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let mut callback = callback_of(&gh.approve(&victim_url).await);
    callback.code = attacker_code;
    assert_eq!(sso.finish(Provider::GitHub, victim, &callback).await.unwrap_err(), SsoError::BadCode);
    assert_eq!(gh.seen().user, 0);

    // No code at all.
    let (url, pending) = sso.begin(Provider::GitHub, &redirect).await.unwrap();
    let mut callback = callback_of(&gh.approve(&url).await);
    callback.code = None;
    assert_eq!(sso.finish(Provider::GitHub, pending, &callback).await.unwrap_err(), SsoError::BadCode);
}

#[tokio::test]
async fn cancelling_at_github_says_so() {
    let gh = GitHub::start(None).await;
    gh.deny();
    let sso = github_at(&gh.url, github::CLIENT_SECRET);
    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    let back = gh.approve(&url).await;
    assert_eq!(query(&back)["error"], "access_denied");
    let err = sso.finish(Provider::GitHub, pending, &callback_of(&back)).await.unwrap_err();
    assert_eq!(err, SsoError::Denied);
    let message = err.message("GitHub");
    assert!(message.contains("cancelled"), "{message}");
    assert!(!message.contains("denied your application"), "never the provider's words: {message}");
    assert!(gh.seen().token.is_empty());
}

#[tokio::test]
async fn github_down_is_unavailable() {
    let down = format!("http://127.0.0.1:{}", closed_port().await);
    let sso = github_at(&down, github::CLIENT_SECRET);
    // Beginning needs no network; the callback's token request finds no one.
    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    let callback = Callback {
        code: Some("0123456789abcdef0123".into()),
        state: Some(query(&url)["state"].clone()),
        ..Callback::default()
    };
    let err = sso.finish(Provider::GitHub, pending, &callback).await.unwrap_err();
    assert_eq!(err, SsoError::Unavailable);
    assert!(err.message("GitHub").starts_with("GitHub could not be reached"));
}

#[tokio::test]
async fn github_slower_than_ten_seconds_is_given_up_on() {
    let (slow, _server) = hanging_server().await;
    let sso = github_at(&slow, github::CLIENT_SECRET);
    let (url, pending) = sso.begin(Provider::GitHub, &redirect_uri(GITHUB_CALLBACK)).await.unwrap();
    let callback = Callback {
        code: Some("0123456789abcdef0123".into()),
        state: Some(query(&url)["state"].clone()),
        ..Callback::default()
    };
    let started = Instant::now();
    let err = sso.finish(Provider::GitHub, pending, &callback).await.unwrap_err();
    assert_eq!(err, SsoError::TimedOut);
    assert_bounded(started.elapsed());
}

#[tokio::test]
async fn settings_turn_providers_on_and_half_settings_are_refused() {
    let sso = Sso::from_config(&no_sign_in()).unwrap();
    assert!(!sso.enabled(Provider::GitHub) && !sso.enabled(Provider::Oidc));
    let err = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap_err();
    assert_eq!(err, SsoError::NotConfigured);
    let half = SignIn { oidc_issuer: Some("https://sso.school.example".into()), ..no_sign_in() };
    let err = Sso::from_config(&half).unwrap_err().to_string();
    assert!(err.contains("OIDC_ISSUER is set but OIDC_CLIENT_ID is not"), "{err}");
    let nameless = SignIn {
        oidc_issuer: Some("https://sso.school.example/realms/pupils".into()),
        oidc_client_id: Some("lobby".into()),
        oidc_client_secret: Some(Secret::new("x")),
        ..no_sign_in()
    };
    let sso = Sso::from_config(&nameless).unwrap();
    assert_eq!(sso.label(Provider::Oidc), Some("sso.school.example"));
    assert!(!format!("{sso:?}").contains("\"x\""));
}

// ---- OpenID Connect, through oidc-provider ----

/// Begins a login, logs `username` in at the provider and finishes it.
async fn oidc_login(sso: &Sso, op: &OidcProvider, username: &str) -> Result<ProviderIdentity, SsoError> {
    let (url, pending) = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await?;
    let back = op.login(&url, username).await;
    sso.finish(Provider::Oidc, pending, &callback_of(&back)).await
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn oidc_discovery_is_lazy_then_cached_and_the_login_is_complete() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, oidc::CLIENT_SECRET);
    assert_eq!(sso.label(Provider::Oidc), Some("School"));
    assert_eq!(op.stats().await.discovery, 0, "nothing fetched before the first login");

    let (url, pending) = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap();
    assert!(url.as_str().starts_with(&format!("{}/auth?", op.issuer)), "{url}");
    let q = query(&url);
    assert_eq!(q["client_id"], oidc::CLIENT_ID);
    assert_eq!(q["redirect_uri"], OIDC_CALLBACK);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["nonce"].len() >= 22 && q["state"].len() >= 22);
    assert_ne!(q["nonce"], q["state"]);

    let back = op.login(&url, "alice").await;
    assert_eq!(query(&back)["iss"], op.issuer, "the provider names itself (RFC 9207)");
    let identity = sso.finish(Provider::Oidc, pending, &callback_of(&back)).await.unwrap();
    assert_eq!(
        identity,
        ProviderIdentity {
            provider: Provider::Oidc,
            issuer: op.issuer.clone(),
            subject: "248289761001".into(),
            username_hint: Some("alice".into()),
            display_name: Some("Alice Liddell".into()),
            email: Some("alice@school.example".into()),
            email_verified: true,
            avatar_url: Some("https://pictures.school.example/alice.png".into()),
        }
    );
    // Without preferred_username, the email's local part; with neither, nothing.
    let bob = oidc_login(&sso, &op, "bob").await.unwrap();
    assert_eq!((bob.subject.as_str(), bob.username_hint.as_deref()), ("248289761002", Some("bob.builder")));
    let carol = oidc_login(&sso, &op, "carol").await.unwrap();
    assert_eq!((carol.username_hint, carol.email, carol.display_name), (None, None, None));

    let stats = op.stats().await;
    assert_eq!((stats.discovery, stats.jwks), (1, 1), "three logins, one discovery: {stats:?}");
    assert_eq!((stats.token, stats.userinfo), (3, 3));
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn oidc_state_nonce_and_code_are_each_checked() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, oidc::CLIENT_SECRET);
    let redirect = redirect_uri(OIDC_CALLBACK);

    // Denied at the provider.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let back = op.deny(&url).await;
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback_of(&back)).await, Err(SsoError::Denied));

    // Wrong state.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let mut callback = callback_of(&op.login(&url, "alice").await);
    callback.state = Some(format!("{}x", callback.state.unwrap()));
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback).await, Err(SsoError::BadState));

    // Expired.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let callback = callback_of(&op.login(&url, "alice").await);
    let late = OffsetDateTime::now_utc() + STATE_TTL + time::Duration::seconds(1);
    assert_eq!(sso.finish_at(Provider::Oidc, pending, &callback, late).await, Err(SsoError::Expired));

    // Reused: the code is spent at the provider.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let callback = callback_of(&op.login(&url, "alice").await);
    sso.finish(Provider::Oidc, pending.clone(), &callback).await.unwrap();
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback).await, Err(SsoError::BadCode));

    // A bad code.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let mut callback = callback_of(&op.login(&url, "alice").await);
    callback.code = Some("not-a-code-this-provider-issued".into());
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback).await, Err(SsoError::BadCode));

    // Another login's code under this login's state: its PKCE verifier does
    // not match (and neither would its nonce).
    let (attacker_url, _) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let attacker_code = callback_of(&op.login(&attacker_url, "bob").await).code;
    let (url, victim) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let mut callback = callback_of(&op.login(&url, "alice").await);
    callback.code = attacker_code;
    assert_eq!(sso.finish(Provider::Oidc, victim, &callback).await, Err(SsoError::BadCode));

    // A callback naming another issuer (a mix-up).
    let (url, pending) = sso.begin(Provider::Oidc, &redirect).await.unwrap();
    let mut callback = callback_of(&op.login(&url, "alice").await);
    callback.iss = Some("https://evil.example".into());
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback).await, Err(SsoError::InvalidToken));
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn oidc_id_tokens_that_fail_verification_sign_no_one_in() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, oidc::CLIENT_SECRET);
    oidc_login(&sso, &op, "alice").await.unwrap();
    for mode in [
        "unpublished-key",
        "forged-kid",
        "wrong-nonce",
        "wrong-aud",
        "wrong-iss",
        "expired",
        "unsigned",
        "no-id-token",
    ] {
        op.set_mode(mode).await;
        let jwks_before = op.stats().await.jwks;
        let result = oidc_login(&sso, &op, "alice").await;
        assert_eq!(result, Err(SsoError::InvalidToken), "an ID token that is {mode}");
        let fetched = op.stats().await.jwks - jwks_before;
        // Only an unknown key id is worth fetching the keys again, once.
        let expected = u32::from(mode == "unpublished-key");
        assert_eq!(fetched, expected, "key set fetches for {mode}");
    }
    op.set_mode("normal").await;
    oidc_login(&sso, &op, "alice").await.unwrap();
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn oidc_key_rotation_fetches_the_new_keys_once() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, oidc::CLIENT_SECRET);
    oidc_login(&sso, &op, "alice").await.unwrap();
    assert_eq!(op.stats().await.jwks, 1);

    op.rotate(false).await;
    oidc_login(&sso, &op, "alice").await.expect("an unknown kid makes Lobby fetch the keys again");
    oidc_login(&sso, &op, "bob").await.unwrap();
    assert_eq!(op.stats().await.jwks, 2, "one more fetch for the new key, then cached");

    // The old key withdrawn altogether.
    op.rotate(true).await;
    oidc_login(&sso, &op, "alice").await.unwrap();
    let stats = op.stats().await;
    assert_eq!((stats.jwks, stats.discovery), (3, 1));
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn oidc_with_a_wrong_client_secret_is_refused() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, "not-the-secret");
    assert_eq!(oidc_login(&sso, &op, "alice").await, Err(SsoError::Refused));
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn a_provider_down_at_start_is_discovered_once_it_is_up() {
    let port = closed_port().await;
    let issuer = format!("http://127.0.0.1:{port}");
    let sso = oidc_at(&issuer, oidc::CLIENT_SECRET);
    let err = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap_err();
    assert_eq!(err, SsoError::Unavailable);
    assert_eq!(err.message("School"), "School could not be reached. Try again in a few minutes.");

    let op = OidcProvider::start_on(port, OIDC_CALLBACK).await;
    assert_eq!(op.issuer, issuer);
    oidc_login(&sso, &op, "alice").await.expect("discovered at the next try");

    // Down after discovery: the token request finds no one.
    let (url, pending) = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap();
    let back = op.login(&url, "alice").await;
    op.stop().await;
    assert_eq!(sso.finish(Provider::Oidc, pending, &callback_of(&back)).await, Err(SsoError::Unavailable));
}

#[tokio::test]
async fn an_oidc_provider_slower_than_ten_seconds_is_given_up_on() {
    // Discovery that never answers (no node needed for this one).
    let (slow, _server) = hanging_server().await;
    let sso = oidc_at(&slow, oidc::CLIENT_SECRET);
    let started = Instant::now();
    let err = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap_err();
    assert_eq!(err, SsoError::TimedOut);
    assert_bounded(started.elapsed());
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci)"]
async fn an_oidc_token_endpoint_slower_than_ten_seconds_is_given_up_on() {
    let op = OidcProvider::start(OIDC_CALLBACK).await;
    let sso = oidc_at(&op.issuer, oidc::CLIENT_SECRET);
    let (url, pending) = sso.begin(Provider::Oidc, &redirect_uri(OIDC_CALLBACK)).await.unwrap();
    let back = op.login(&url, "alice").await;
    op.set_mode("slow").await;
    let started = Instant::now();
    let err = sso.finish(Provider::Oidc, pending, &callback_of(&back)).await.unwrap_err();
    assert_eq!(err, SsoError::TimedOut);
    assert_bounded(started.elapsed());
}
