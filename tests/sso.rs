//! Sign-in through GitHub or OpenID Connect, end to end: the real app, a
//! real HTTP client with a cookie jar, and real providers started here
//! (never the internet): the GitHub stand-in (`common::github`, always) and
//! oidc-provider under node (`common::oidc`; those tests are ignored unless
//! asked for, and fail without node and `npm ci --prefix tests/sso/oidc`).
//! On SQLite, or PostgreSQL with `LOBBY_TEST_POSTGRES`.
//!
//! The rules of the contract's [sso] section, one test each (or a few):
//! the routes (404 unconfigured, throttled, `next` local), the callback
//! (403 for a state not this session's, single use, every other failure a
//! page with our words, never a 500), logging in exactly as a password does,
//! accounts (a new identity makes a new account, never attaching by name or
//! email; names derived valid and unique), registration modes and invites,
//! bans, linking and unlinking from `/account`, setting a password, and the
//! buttons.

mod common;

use std::time::{Duration, Instant};

use common::{
    github::{self, Account, GitHub},
    oidc::{self, OidcProvider},
    ws::Ws,
    *,
};
use lobby::{Config, config::Secret, domain::RegistrationMode};
use reqwest::{StatusCode, header};
use url::Url;

const PASSWORD: &str = "correct horse battery";

fn github_on(c: &mut Config, gh: &GitHub) {
    c.sign_in.github_client_id = Some(github::CLIENT_ID.into());
    c.sign_in.github_client_secret = Some(Secret::new(github::CLIENT_SECRET));
    c.sign_in.github_url = gh.url.clone();
    c.sign_in.github_api_url = gh.url.clone();
}

fn oidc_on(c: &mut Config, op: &OidcProvider) {
    c.sign_in.oidc_issuer = Some(op.issuer.clone());
    c.sign_in.oidc_client_id = Some(oidc::CLIENT_ID.into());
    c.sign_in.oidc_client_secret = Some(Secret::new(oidc::CLIENT_SECRET));
    c.sign_in.oidc_name = Some("School".into());
}

/// An app with GitHub (the stand-in) on.
async fn github_app(gh: &GitHub, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        github_on(c, gh);
        tweak(c);
    })
    .await
}

/// An app with the OpenID Connect provider on (and its redirect URI
/// registered there once the app knows its port).
async fn oidc_app(op: &OidcProvider, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(|c| {
        oidc_on(c, op);
        tweak(c);
    })
    .await;
    op.allow_redirects(&[app.url("/auth/oidc/callback")]).await;
    app
}

/// `GET path` (`/auth/PROVIDER…`): 303 to the provider; its URL.
async fn begin(app: &TestApp, client: &reqwest::Client, path: &str) -> Url {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}: {}", res.text().await.unwrap_or_default());
    Url::parse(&location(&res)).unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// A whole sign-in through the GitHub stand-in, from `path`: the app's
/// answer to the callback.
async fn via_github(app: &TestApp, client: &reqwest::Client, gh: &GitHub, path: &str) -> reqwest::Response {
    let url = begin(app, client, path).await;
    let back = gh.approve(&url).await;
    get(client, back.as_str()).await
}

/// A whole sign-in through the OpenID Connect provider as `username`.
async fn via_oidc(
    app: &TestApp,
    client: &reqwest::Client,
    op: &OidcProvider,
    path: &str,
    username: &str,
) -> reqwest::Response {
    let url = begin(app, client, path).await;
    let back = op.login(&url, username).await;
    get(client, back.as_str()).await
}

/// Who the client is logged in as, per `/profile`.
async fn logged_in_as(app: &TestApp, client: &reqwest::Client) -> Option<String> {
    let res = get(client, &app.url("/profile")).await;
    if res.status() != StatusCode::OK {
        return None;
    }
    let page = res.text().await.unwrap();
    let welcome = page.split(r#"<h1 id="welcome">Welcome, "#).nth(1)?;
    Some(welcome.split("!</h1>").next()?.to_owned())
}

/// The page a failed sign-in was sent to (303), fetched: its path and text.
async fn landed(app: &TestApp, client: &reqwest::Client, res: reqwest::Response) -> (String, String) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", res.text().await.unwrap_or_default());
    let to = location(&res);
    let page = get(client, &app.url(&to)).await;
    assert_eq!(page.status(), StatusCode::OK, "{to}");
    (to, page.text().await.unwrap())
}

/// The session cookie a response set, as a `Cookie` header.
fn cookie_of(res: &reqwest::Response) -> String {
    format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(res).expect("a session cookie is set"))
}

async fn users(app: &TestApp) -> i64 {
    app.scalar("SELECT count(*) FROM users").await
}

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

/// A password user, logged in.
async fn password_user(app: &TestApp, name: &str) -> reqwest::Client {
    app.user(name).await
}

// ---- The routes and the buttons ----

#[tokio::test]
async fn unconfigured_providers_have_no_routes_and_no_buttons() {
    let app = spawn_app().await;
    let client = app.client();
    for path in [
        "/auth/github",
        "/auth/oidc",
        "/auth/github/callback?code=x&state=y",
        "/auth/nope",
        "/auth/oidc/callback",
    ] {
        assert_eq!(get(&client, &app.url(path)).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let home = get(&client, &app.url("/")).await.text().await.unwrap();
    assert!(!home.contains("Log in with"), "no button without a provider");

    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let home = get(&app.client(), &app.url("/?next=/chat")).await.text().await.unwrap();
    assert!(
        home.contains(r#"id="login-github" href="/auth/github?next=%2Fchat">Log in with GitHub</a>"#),
        "{home}"
    );
    assert!(!home.contains("login-oidc"), "OpenID Connect is not configured");
    assert_eq!(get(&app.client(), &app.url("/auth/oidc")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_github_login_registers_once_and_then_logs_in_like_a_password() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let client = app.client();

    // /auth/github: a session is made to bind the sign-in to, and the
    // browser goes to GitHub with PKCE and a state.
    let res = get(&client, &app.url("/auth/github")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let before = cookie_of(&res);
    let set_cookie = set_cookie_header(&res).unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let url = Url::parse(&location(&res)).unwrap();
    assert!(url.as_str().starts_with(&format!("{}/login/oauth/authorize?", gh.url)), "{url}");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], app.url("/auth/github/callback"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 22);
    assert_eq!(app.scalar("SELECT count(*) FROM sso_pending").await, 1);

    // Back from GitHub: a new account, logged in under a new session id.
    let res = get(&client, gh.approve(&url).await.as_str()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/profile");
    let after = cookie_of(&res);
    assert_ne!(after, before, "a new session id at login");
    let set_cookie = set_cookie_header(&res).unwrap();
    for rule in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(rule), "{rule}: {set_cookie}");
    }
    assert_eq!(logged_in_as(&app, &client).await.as_deref(), Some("octocat"));
    assert_eq!(app.scalar("SELECT count(*) FROM sso_pending").await, 0, "the state is spent");
    // The session is listed on the account page, like a password login's.
    let account = get(&client, &app.url("/account")).await.text().await.unwrap();
    assert!(account.contains("this one"));

    // The account: no password; the identity keeps the course's profile.
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE password_hash IS NULL").await, 1);
    let profile = app
        .scalar(
            "SELECT count(*) FROM identities WHERE provider = 'github' AND subject = '583231'
               AND display_name = 'The Octocat' AND email = 'octo@github.example'
               AND photo_url = 'https://avatars.githubusercontent.example/u/583231?v=4'
               AND login_count = 1 AND last_login_at IS NOT NULL AND created_at > 0",
        )
        .await;
    assert_eq!(profile, 1);
    let issuer_is_github = format!("SELECT count(*) FROM identities WHERE issuer = '{}'", gh.url);
    assert_eq!(app.scalar(&issuer_is_github).await, 1);
    // GitHub's token (the stand-in's start with gho_) is kept nowhere.
    let token_kept = if app.db.is_postgres() {
        "SELECT count(*) FROM tower_sessions.session WHERE position('gho_'::bytea in data) > 0"
    } else {
        "SELECT count(*) FROM tower_sessions WHERE instr(CAST(data AS TEXT), 'gho_') > 0"
    };
    assert_eq!(app.scalar(token_kept).await, 0);
    let profile_has_token =
        "SELECT count(*) FROM identities WHERE concat(display_name, photo_url, email, subject) LIKE '%gho%'";
    assert_eq!(app.scalar(profile_has_token).await, 0);

    // Another browser, the same GitHub account: the same Lobby account, one more login.
    let other = app.client();
    let res = via_github(&app, &other, &gh, "/auth/github").await;
    assert_eq!(location(&res), "/profile");
    assert_eq!(logged_in_as(&app, &other).await.as_deref(), Some("octocat"));
    assert_eq!(users(&app).await, 1);
    assert_eq!(app.scalar("SELECT login_count FROM identities").await, 2);

    // The session is a session like any other: a socket opens, and logout closes it with 4401.
    let cookie = cookie_of(&res);
    let mut socket = Ws::open(&app.base, &cookie).await;
    socket.until("chat history").await;
    let res = app.bare_client().post(app.url("/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(socket.until_closed(Duration::from_secs(2)).await, Some(4401));
}

#[tokio::test]
async fn the_login_ends_at_next_when_it_is_a_local_path() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let res = via_github(&app, &app.client(), &gh, "/auth/github?next=/chat").await;
    assert_eq!(location(&res), "/chat");
    for elsewhere in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let path = format!(
            "/auth/github?next={}",
            url::form_urlencoded::byte_serialize(elsewhere.as_bytes()).collect::<String>()
        );
        let res = via_github(&app, &app.client(), &gh, &path).await;
        assert_eq!(location(&res), "/profile", "{elsewhere}");
    }
}

#[tokio::test]
async fn a_callback_not_begun_in_this_session_is_refused_and_a_state_works_once() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let (victim, attacker) = (app.client(), app.client());

    // The attacker's own callback, sent from the victim's browser (a login
    // CSRF): 403, nobody logged in, and that sign-in is spent.
    let url = begin(&app, &attacker, "/auth/github").await;
    let back = gh.approve(&url).await;
    let res = get(&victim, back.as_str()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("did not start in this browser"));
    assert_eq!(logged_in_as(&app, &victim).await, None);
    assert_eq!(get(&attacker, back.as_str()).await.status(), StatusCode::FORBIDDEN, "spent by the first try");
    assert_eq!(users(&app).await, 0);

    // A state works once: the replay of a good callback is refused.
    let url = begin(&app, &victim, "/auth/github").await;
    let back = gh.approve(&url).await;
    assert_eq!(get(&victim, back.as_str()).await.status(), StatusCode::SEE_OTHER);
    let replayed = get(&victim, back.as_str()).await;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);

    // No state, an unknown one, or a query that cannot be read.
    let stranger = app.client();
    begin(&app, &stranger, "/auth/github").await;
    for query in ["code=abc", "code=abc&state=not-a-state-we-gave", "state=a&state=b", ""] {
        let res = get(&stranger, &app.url(&format!("/auth/github/callback?{query}"))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{query}");
    }
    assert_eq!(logged_in_as(&app, &stranger).await, None);
    assert_eq!(users(&app).await, 1);
}

#[tokio::test]
async fn failures_at_github_are_pages_in_our_words() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let client = app.client();

    // A bad code (with the right state).
    let url = begin(&app, &client, "/auth/github?next=/chat").await;
    let mut back = gh.approve(&url).await;
    let state = back.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    back.query_pairs_mut().clear().append_pair("code", "0000deadbeef").append_pair("state", &state);
    let res = get(&client, back.as_str()).await;
    assert_eq!(location(&res), "/?signin=bad_code&provider=github&next=%2Fchat", "next is kept");
    let (_, page) = landed(&app, &client, res).await;
    assert!(page.contains("GitHub did not accept the sign-in code"), "{page}");
    assert!(page.contains(r#"href="/auth/github?next=%2Fchat""#), "the button carries next again");

    // The user says no at GitHub.
    gh.deny();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    let (to, page) = landed(&app, &client, res).await;
    assert!(to.starts_with("/?signin=denied"), "{to}");
    assert!(page.contains("GitHub did not let you in: the sign-in was cancelled there."));

    // Ten minutes and more after it began.
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let url = begin(&app, &client, "/auth/github").await;
    // Expired a minute ago (the housekeeping forgets them only an hour after).
    let a_minute_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 60;
    app.db.execute(&format!("UPDATE sso_pending SET expires_at = {a_minute_ago}")).await;
    let res = get(&client, gh.approve(&url).await.as_str()).await;
    let (_, page) = landed(&app, &client, res).await;
    assert!(page.contains("The sign-in took more than 10 minutes."), "{page}");
    assert_eq!(users(&app).await, 0);
    assert_eq!(logged_in_as(&app, &client).await, None);
}

#[tokio::test]
async fn github_down_or_slower_than_ten_seconds_is_a_page_not_an_error() {
    // Down: nothing listens where GitHub should be.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|c| {
        c.sign_in.github_client_id = Some(github::CLIENT_ID.into());
        c.sign_in.github_client_secret = Some(Secret::new(github::CLIENT_SECRET));
        c.sign_in.github_url = format!("http://127.0.0.1:{port}");
        c.sign_in.github_api_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    let client = app.client();
    let url = begin(&app, &client, "/auth/github").await;
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let callback = app.url(&format!("/auth/github/callback?code=abc&state={state}"));
    let (_, page) = landed(&app, &client, get(&client, &callback).await).await;
    assert!(page.contains("GitHub could not be reached. Try again in a few minutes."), "{page}");

    // Slow: a GitHub that accepts connections and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_with(|c| {
        c.sign_in.github_client_id = Some(github::CLIENT_ID.into());
        c.sign_in.github_client_secret = Some(Secret::new(github::CLIENT_SECRET));
        c.sign_in.github_url = hanging_url.clone();
        c.sign_in.github_api_url = hanging_url.clone();
    })
    .await;
    let url = begin(&app, &client, "/auth/github").await;
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let started = Instant::now();
    let res = get(&client, &app.url(&format!("/auth/github/callback?code=abc&state={state}"))).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(9_900) && took < Duration::from_secs(13), "{took:?}");
    let (_, page) = landed(&app, &client, res).await;
    assert!(page.contains("GitHub did not answer in time."), "{page}");
    assert_eq!(users(&app).await, 0);
}

#[tokio::test]
async fn sign_in_routes_and_callbacks_count_against_the_per_address_throttle() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |c| c.auth_attempts_per_minute = 3).await;
    let client = app.client();
    let first = begin(&app, &client, "/auth/github").await;
    begin(&app, &client, "/auth/github").await;
    // The third attempt is the callback: it goes through.
    let res = get(&client, gh.approve(&first).await.as_str()).await;
    assert_eq!(location(&res), "/profile");
    // The fourth is one too many, whichever route.
    for path in ["/auth/github", "/auth/github/callback?code=a&state=b"] {
        let res = get(&app.client(), &app.url(path)).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        let wait: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(res.text().await.unwrap().contains("Too many attempts from your network"));
    }
}

// ---- Accounts ----

#[tokio::test]
async fn a_new_identity_never_takes_over_an_account_by_name_or_look() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    // A password user already has the GitHub login as a name, and another its look-alike.
    let octocat = password_user(&app, "octocat").await;
    password_user(&app, "0ctocat2").await;

    let client = app.client();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    assert_eq!(location(&res), "/profile");
    // octocat is taken, octocat2 looks like 0ctocat2: the next number.
    assert_eq!(logged_in_as(&app, &client).await.as_deref(), Some("octocat3"));
    assert_eq!(logged_in_as(&app, &octocat).await.as_deref(), Some("octocat"), "untouched");
    let owner = "SELECT u.username FROM identities i JOIN users u ON u.id = i.user_id";
    let pool = app.db.pool().await;
    let name: String = sqlx::query_scalar(owner).fetch_one(&pool).await.unwrap();
    assert_eq!(name, "octocat3");
    pool.close().await;
    // The password user's password still works, and only theirs.
    assert_eq!(app.login(&app.client(), "octocat", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_banned_account_is_refused_at_the_callback() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let admin = password_user(&app, "root").await;
    let client = app.client();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    let cookie = cookie_of(&res);
    let mut socket = Ws::open(&app.base, &cookie).await;
    socket.until("chat history").await;

    let id = app.scalar("SELECT id FROM users WHERE username = 'octocat'").await.to_string();
    let res = post(&admin, app.url("/admin/users/ban"), &[("user", &id)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(socket.until_closed(Duration::from_secs(2)).await, Some(4403));

    let other = app.client();
    let res = via_github(&app, &other, &gh, "/auth/github").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("This account is suspended."));
    assert_eq!(logged_in_as(&app, &other).await, None);
    assert_eq!(app.scalar("SELECT login_count FROM identities").await, 1, "a refused login is no login");
}

/// The invite link an admin creates on /admin.
async fn new_invite(app: &TestApp, admin: &reqwest::Client) -> String {
    let res = post(admin, app.url("/admin/invites"), &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let link = page.split(r#"id="new-invite" href=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    link.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn registration_modes_hold_for_new_identities_and_invites_go_through_the_provider() {
    let gh = GitHub::start(None).await;
    gh.add_account(Account { id: 9001, login: "mona", name: None, email: None, emails: vec![] });
    let app = github_app(&gh, |c| c.registration = RegistrationMode::Closed).await;
    let admin = password_user(&app, "root").await;

    // Closed: no new account, in our words; the home page still has the button.
    let client = app.client();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    let (to, page) = landed(&app, &client, res).await;
    assert!(to.starts_with("/?signin=closed"), "{to}");
    assert!(page.contains("registration is closed, so none was made"), "{page}");
    assert!(page.contains(r#"id="login-github""#));
    assert_eq!(users(&app).await, 1);
    assert_eq!(app.scalar("SELECT count(*) FROM identities").await, 0, "nothing half-created");

    // By invitation: not without an invite…
    post(&admin, app.url("/admin/registration"), &[("mode", "invite")]).await;
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    let (_, page) = landed(&app, &client, res).await;
    assert!(page.contains("registration is by invitation only"), "{page}");
    assert_eq!(users(&app).await, 1);

    // …but from /join/TOKEN, whose button carries the invite there and back.
    let token = new_invite(&app, &admin).await;
    let join = get(&client, &app.url(&format!("/join/{token}"))).await.text().await.unwrap();
    let href = format!("/auth/github?invite={token}");
    assert!(join.contains(&format!(r#"id="login-github" href="{href}""#)), "{join}");
    let res = via_github(&app, &client, &gh, &href).await;
    assert_eq!(location(&res), "/profile");
    assert_eq!(logged_in_as(&app, &client).await.as_deref(), Some("octocat"));
    let used = "SELECT count(*) FROM invites i JOIN users u ON u.id = i.used_by WHERE u.username = 'octocat'";
    assert_eq!(app.scalar(used).await, 1, "the invite is used up");

    // An invite works once.
    gh.sign_in_as("mona");
    let mona = app.client();
    let res = via_github(&app, &mona, &gh, &href).await;
    let (_, page) = landed(&app, &mona, res).await;
    assert!(page.contains("This invite link is not valid"), "{page}");
    assert_eq!(users(&app).await, 2);

    // An account that exists logs in whatever the mode.
    post(&admin, app.url("/admin/registration"), &[("mode", "closed")]).await;
    gh.sign_in_as("octocat");
    let again = app.client();
    let res = via_github(&app, &again, &gh, "/auth/github").await;
    assert_eq!(location(&res), "/profile");
}

#[tokio::test]
async fn the_first_account_made_through_a_provider_is_the_admin() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |c| c.registration = RegistrationMode::Closed).await;
    let client = app.client();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    assert_eq!(location(&res), "/profile", "registration is open while no account exists");
    assert_eq!(get(&client, &app.url("/admin")).await.status(), StatusCode::OK);
}

// ---- Linking, unlinking, and passwords ----

#[tokio::test]
async fn linking_from_the_account_page_and_unlinking() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let alice = password_user(&app, "alice").await;

    let account = get(&alice, &app.url("/account")).await.text().await.unwrap();
    assert!(account.contains(r#"id="connect-github" href="/auth/github">Connect GitHub</a>"#), "{account}");

    // Logged in, the same route links instead of logging in.
    let res = via_github(&app, &alice, &gh, "/auth/github").await;
    assert_eq!(location(&res), "/account?done=linked&provider=github");
    let account = get(&alice, &app.url(&location(&res))).await.text().await.unwrap();
    assert!(account.contains("GitHub is connected: you can log in with it."), "{account}");
    assert!(account.contains("The Octocat") && !account.contains(r#"id="connect-github""#));
    assert!(!account.contains("<img"), "no picture from another site");
    assert_eq!(logged_in_as(&app, &alice).await.as_deref(), Some("alice"), "still alice, nothing new");
    assert_eq!(users(&app).await, 1);

    // From now on GitHub logs in as alice.
    let elsewhere = app.client();
    via_github(&app, &elsewhere, &gh, "/auth/github").await;
    assert_eq!(logged_in_as(&app, &elsewhere).await.as_deref(), Some("alice"));

    // Linking it again, or to someone else, is refused with a message.
    let res = via_github(&app, &alice, &gh, "/auth/github").await;
    let (_, page) = landed(&app, &alice, res).await;
    assert!(page.contains("That GitHub account is already connected to yours."), "{page}");
    let bob = password_user(&app, "bob").await;
    let res = via_github(&app, &bob, &gh, "/auth/github").await;
    let (to, page) = landed(&app, &bob, res).await;
    assert!(to.starts_with("/?signin=linked_elsewhere&provider=github"), "{to}");
    assert!(page.contains("That GitHub account is connected to another Lobby account"), "{page}");
    assert_eq!(app.scalar("SELECT count(*) FROM identities").await, 1);

    // Linking changes the account: not from another site's link.
    let res = bob.get(app.url("/auth/github")).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Unlinking: not someone else's, and alice may (she has a password).
    let id = app.scalar("SELECT id FROM identities").await.to_string();
    let res = post(&bob, app.url("/account/identities/unlink"), &[("identity", &id)]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = post(&alice, app.url("/account/identities/unlink"), &[("identity", &id)]).await;
    assert_eq!(location(&res), "/account?done=unlinked");
    assert_eq!(app.scalar("SELECT count(*) FROM identities").await, 0);
    let res = post(&alice, app.url("/account/identities/unlink"), &[("identity", "nonsense")]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_way_in_stays_and_a_password_can_be_set() {
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let client = app.client();
    let res = via_github(&app, &client, &gh, "/auth/github").await;
    let first_cookie = cookie_of(&res);
    // A second session of the same account, with a socket open.
    let other = app.client();
    let res = via_github(&app, &other, &gh, "/auth/github").await;
    let mut other_socket = Ws::open(&app.base, &cookie_of(&res)).await;
    other_socket.until("chat history").await;

    // No password: the account page offers to set one, and the one identity cannot go.
    let account = get(&client, &app.url("/account")).await.text().await.unwrap();
    assert!(account.contains(r#"id="set-password""#) && !account.contains(r#"id="password""#), "{account}");
    assert!(account.contains("Your only way in"));
    let id = app.scalar("SELECT id FROM identities").await.to_string();
    let res = post(&client, app.url("/account/identities/unlink"), &[("identity", &id)]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("That is the only way into your account."));
    assert_eq!(app.scalar("SELECT count(*) FROM identities").await, 1);

    // A password login fails as a wrong password does: same words.
    let res = app.login(&app.client(), "octocat", "").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.unwrap().contains("Invalid username or password."));

    // The password rules hold.
    for (bad, why) in [
        ("short", "8 to 256 characters"),
        ("octocat-rules-ok", "must not contain your username"),
        ("password", "most common"),
    ] {
        let res = post(&client, app.url("/account/password/set"), &[("new", bad)]).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(res.text().await.unwrap().contains(why), "{bad}");
    }
    // Set: this session goes on under a new id, the other one ends (4401).
    let res = post(&client, app.url("/account/password/set"), &[("new", PASSWORD)]).await;
    assert_eq!(location(&res), "/account?done=password-set");
    assert_ne!(cookie_of(&res), first_cookie);
    assert_eq!(other_socket.until_closed(Duration::from_secs(2)).await, Some(4401));
    assert_eq!(logged_in_as(&app, &other).await, None);
    assert_eq!(logged_in_as(&app, &client).await.as_deref(), Some("octocat"));
    assert_eq!(app.login(&app.client(), "octocat", PASSWORD).await.status(), StatusCode::SEE_OTHER);

    // Once set, it is changed with the current one, not set again; and the
    // identity may go now.
    let res = post(&client, app.url("/account/password/set"), &[("new", "another good passphrase")]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = post(&client, app.url("/account/identities/unlink"), &[("identity", &id)]).await;
    assert_eq!(location(&res), "/account?done=unlinked");
}

#[tokio::test]
async fn a_password_login_to_an_account_without_one_takes_as_long_as_a_wrong_password() {
    let gh = GitHub::start(None).await;
    // Up to 24 failed logins from one address: none of them throttled.
    let app = github_app(&gh, |c| {
        c.login_failure_burst = 100;
        c.auth_attempts_per_minute = 1000;
    })
    .await;
    via_github(&app, &app.client(), &gh, "/auth/github").await;
    password_user(&app, "carol").await;
    let client = app.client();
    // Timed on a machine that runs other tests beside this one, which only
    // ever add time: the fastest of each kind is the work itself, and a
    // measurement that other work spoilt is taken again (up to three
    // times). Without the dummy hash, every try would fail.
    let mut tries = Vec::new();
    for _ in 0..3 {
        let (mut no_password, mut wrong_password, mut pages) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..4 {
            let started = Instant::now();
            let res = app.login(&client, "octocat", "a guess at nothing").await;
            no_password.push(started.elapsed());
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            pages.push(res.text().await.unwrap().replace("octocat", "NAME"));
            let started = Instant::now();
            let res = app.login(&client, "carol", "a guess at nothing").await;
            wrong_password.push(started.elapsed());
            pages.push(res.text().await.unwrap().replace("carol", "NAME"));
        }
        assert!(pages.iter().all(|p| *p == pages[0]), "the same page for both");
        let fastest = |times: &[Duration]| times.iter().min().unwrap().as_secs_f64();
        let (none, wrong) = (fastest(&no_password), fastest(&wrong_password));
        if none > wrong * 0.4 && none < wrong * 2.5 {
            return;
        }
        tries.push(format!("{none:.4}s vs {wrong:.4}s"));
    }
    panic!("no password against a wrong one, fastest of each: {}", tries.join(", "));
}

#[tokio::test]
async fn changes_on_behalf_of_an_ended_session_are_refused_where_they_are_made() {
    use lobby::{
        domain::{IdentityKey, IdentityProfile, Provider},
        store::{AccountChangeError, Actor, IdentityChangeError, Store},
    };
    let gh = GitHub::start(None).await;
    let app = github_app(&gh, |_| {}).await;
    let client = app.client();
    via_github(&app, &client, &gh, "/auth/github").await;
    let user = app.scalar("SELECT id FROM users").await;
    let identity = app.scalar("SELECT id FROM identities").await;
    let session = tower_sessions::session::Id::default();
    let ended = Actor::User { user, session };

    let store = Store::connect(&lobby::config::DatabaseUrl::new(app.db.url()), &Config::defaults().database)
        .await
        .unwrap();
    let key =
        IdentityKey { provider: Provider::Oidc, issuer: "https://idp.example".into(), subject: "1".into() };
    let linked = store.link_identity(&key, &IdentityProfile::default(), ended).await;
    assert!(matches!(linked, Err(IdentityChangeError::NotAllowed)), "{linked:?}");
    let unlinked = store.unlink_identity(identity, ended).await;
    assert!(matches!(unlinked, Err(IdentityChangeError::NotAllowed)), "{unlinked:?}");
    let set = store.set_first_password(user, "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", session).await;
    assert!(matches!(set, Err(AccountChangeError::NotAllowed)), "{set:?}");
    assert_eq!(app.scalar("SELECT count(*) FROM identities").await, 1);
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE password_hash IS NULL").await, 1);
    store.close().await;
}

// ---- OpenID Connect, against oidc-provider ----

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci --prefix tests/sso/oidc)"]
async fn an_oidc_login_registers_with_the_providers_profile() {
    let op = OidcProvider::start("http://127.0.0.1:1/unused").await;
    let app = oidc_app(&op, |_| {}).await;
    let client = app.client();

    let home = get(&client, &app.url("/")).await.text().await.unwrap();
    assert!(home.contains(r#"id="login-oidc" href="/auth/oidc">Log in with School</a>"#), "{home}");
    assert!(!home.contains("login-github"));

    let url = begin(&app, &client, "/auth/oidc?next=/chat").await;
    assert!(url.as_str().starts_with(&op.issuer), "{url}");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["redirect_uri"], app.url("/auth/oidc/callback"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("nonce") && q.contains_key("state"));
    let res = get(&client, op.login(&url, "alice").await.as_str()).await;
    assert_eq!(location(&res), "/chat");
    assert_eq!(logged_in_as(&app, &client).await.as_deref(), Some("alice"));
    let kept = format!(
        "SELECT count(*) FROM identities WHERE provider = 'oidc' AND issuer = '{}' AND subject = '248289761001'
           AND display_name = 'Alice Liddell' AND email = 'alice@school.example'
           AND photo_url = 'https://pictures.school.example/alice.png' AND login_count = 1",
        op.issuer
    );
    assert_eq!(app.scalar(&kept).await, 1);

    // No preferred_username: the email's local part; nothing at all: "user".
    let bob = app.client();
    via_oidc(&app, &bob, &op, "/auth/oidc", "bob").await;
    assert_eq!(logged_in_as(&app, &bob).await.as_deref(), Some("bob.builder"));
    let carol = app.client();
    via_oidc(&app, &carol, &op, "/auth/oidc", "carol").await;
    assert_eq!(logged_in_as(&app, &carol).await.as_deref(), Some("user"));

    // Again: the same account.
    let again = app.client();
    via_oidc(&app, &again, &op, "/auth/oidc", "alice").await;
    assert_eq!(logged_in_as(&app, &again).await.as_deref(), Some("alice"));
    assert_eq!(users(&app).await, 3);
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci --prefix tests/sso/oidc)"]
async fn oidc_tokens_that_fail_verification_and_refusals_are_pages() {
    let op = OidcProvider::start("http://127.0.0.1:1/unused").await;
    let app = oidc_app(&op, |_| {}).await;
    let client = app.client();
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
        let res = via_oidc(&app, &client, &op, "/auth/oidc", "alice").await;
        let (to, page) = landed(&app, &client, res).await;
        assert!(to.starts_with("/?signin=invalid_token&provider=oidc"), "{mode}: {to}");
        assert!(page.contains("could not be verified, so you were not signed in"), "{mode}");
        assert_eq!(logged_in_as(&app, &client).await, None, "{mode}");
    }
    op.set_mode("normal").await;
    assert_eq!(users(&app).await, 0);

    // Consent refused.
    let url = begin(&app, &client, "/auth/oidc").await;
    let res = get(&client, op.deny(&url).await.as_str()).await;
    let (_, page) = landed(&app, &client, res).await;
    assert!(page.contains("School did not let you in"), "{page}");

    // Key rotation (the old key retired): the new key is fetched and the login goes on.
    op.rotate(true).await;
    let res = via_oidc(&app, &client, &op, "/auth/oidc", "alice").await;
    assert_eq!(location(&res), "/profile");

    // The provider gone between the redirect and the callback.
    let other = app.client();
    let url = begin(&app, &other, "/auth/oidc").await;
    let back = op.login(&url, "bob").await;
    op.stop().await;
    let (_, page) = landed(&app, &other, get(&other, back.as_str()).await).await;
    assert!(page.contains("School could not be reached."), "{page}");
    assert_eq!(users(&app).await, 1);
}

#[tokio::test]
#[ignore = "needs node and tests/sso/oidc installed (npm ci --prefix tests/sso/oidc)"]
async fn two_providers_two_accounts_even_with_one_email_and_one_name() {
    let op = OidcProvider::start("http://127.0.0.1:1/unused").await;
    let gh = GitHub::start(None).await;
    // A GitHub account with the OIDC alice's name and email.
    gh.add_account(Account {
        id: 4242,
        login: "alice",
        name: Some("Alice Liddell"),
        email: Some("alice@school.example"),
        emails: vec![],
    });
    gh.sign_in_as("alice");
    let app = oidc_app(&op, |c| github_on(c, &gh)).await;
    let home = get(&app.client(), &app.url("/")).await.text().await.unwrap();
    assert!(home.contains(r#"id="login-github""#) && home.contains(r#"id="login-oidc""#));

    let at_github = app.client();
    via_github(&app, &at_github, &gh, "/auth/github").await;
    let at_school = app.client();
    via_oidc(&app, &at_school, &op, "/auth/oidc", "alice").await;
    assert_eq!(logged_in_as(&app, &at_github).await.as_deref(), Some("alice"));
    assert_eq!(logged_in_as(&app, &at_school).await.as_deref(), Some("alice2"));
    assert_eq!(users(&app).await, 2);

    // A GitHub state brought to the OpenID Connect callback is not that sign-in's.
    let client = app.client();
    let url = begin(&app, &client, "/auth/github").await;
    let back = gh.approve(&url).await;
    let wrong_route = app.url(&format!("/auth/oidc/callback?{}", back.query().unwrap()));
    assert_eq!(get(&client, &wrong_route).await.status(), StatusCode::FORBIDDEN);

    // Linking the school's account to the GitHub-made one: it is someone else's.
    let res = via_oidc(&app, &at_github, &op, "/auth/oidc", "alice").await;
    let (_, page) = landed(&app, &at_github, res).await;
    assert!(page.contains("That School account is connected to another Lobby account"), "{page}");
    // bob's is nobody's: linked, and listed with its provider's name.
    let res = via_oidc(&app, &at_github, &op, "/auth/oidc", "bob").await;
    assert_eq!(location(&res), "/account?done=linked&provider=oidc");
    let account = get(&at_github, &app.url(&location(&res))).await.text().await.unwrap();
    assert!(account.contains("School is connected") && account.contains("Bob Builder"), "{account}");
}

// ---- The database ----

/// An SQLite database as the release before identities left it (every
/// migration but this change's), with a user who has messages, an invite
/// and a session: the migration keeps every row, reference and index.
#[tokio::test]
async fn an_existing_sqlite_database_keeps_working_after_the_migration() {
    use sqlx::{Connection, SqliteConnection, migrate::Migrator};

    let db = std::sync::Arc::new(TestDb::sqlite());
    let old = tempfile::TempDir::new().unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "20261205200001" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let url = format!("{}?mode=rwc", db.url());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    Migrator::new(old.path()).await.unwrap().run(&mut conn).await.unwrap();
    let hasher = lobby::accounts::Hasher::new(&Config::defaults().argon2).await.unwrap();
    let name = lobby::domain::Username::parse("dora").unwrap();
    let hash = hasher.hash(&lobby::accounts::Password::new(PASSWORD, &name).unwrap()).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at, skeleton, session_key, role)
         VALUES (7, 'dora', $1, 1, 'dora', 'k', 'admin')",
    )
    .bind(&hash)
    .execute(&mut conn)
    .await
    .unwrap();
    for statement in [
        "INSERT INTO messages (user_id, body, sent_at, seq) VALUES (7, 'before the upgrade', 1, 1)",
        "INSERT INTO invites (token_hash, created_by, created_at, expires_at) VALUES ('h', 7, 1, 2)",
        "INSERT INTO tower_sessions (id, data, expiry_date) VALUES ('s', x'80', 4102444800)",
        "INSERT INTO account_sessions (session_id, user_id, handle, created_at, last_seen, agent) VALUES ('s', 7, 'h', 1, 1, 'a')",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    // The app migrates it at start; dora logs in and her message is there.
    let app = start(db.clone(), |_| {}).await;
    let client = app.client();
    assert_eq!(app.login(&client, "dora", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let messages = get(&client, &app.url("/api/messages")).await.text().await.unwrap();
    assert!(messages.contains("before the upgrade"), "{messages}");

    let mut conn = SqliteConnection::connect(&db.url()).await.unwrap();
    let broken: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&mut conn).await.unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_index_list('users') ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(indexes, ["users_skeleton_key", "users_username_key"]);
    for table in ["messages", "invites", "account_sessions"] {
        let target: String =
            sqlx::query_scalar(&format!("SELECT \"table\" FROM pragma_foreign_key_list('{table}')"))
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(target, "users", "{table} still references users");
    }
    drop(conn);
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE password_hash IS NOT NULL").await, 1);
    // And a name a password user has is not given to a provider's user.
    assert_eq!(app.login(&app.client(), "dora", "not it").await.status(), StatusCode::UNAUTHORIZED);
}
