//! Sign-in through a provider on a cluster: three nodes on one PostgreSQL
//! database behind one `PUBLIC_URL`, as behind a load balancer without
//! sticky sessions. The browser's requests go to whichever node the test
//! says, as a load balancer might send them. Needs PostgreSQL
//! (`LOBBY_TEST_POSTGRES`) and the test OpenID Connect provider (node, and
//! `npm ci --prefix tests/sso/oidc`): ignored by a plain `cargo test`, and
//! failing, not passing, when run without them.

mod common;

use std::time::Duration;

use common::{
    cluster::nodes,
    github::{self, GitHub},
    oidc::{self, OidcProvider},
    ws::{Recorder, Ws, connect},
    *,
};
use lobby::config::Secret;
use reqwest::StatusCode;
use url::Url;

/// What every node is reached at, through the "load balancer".
const PUBLIC_URL: &str = "http://lobby.test";

/// Where the load balancer sends a URL of `PUBLIC_URL`: to `node`.
fn at(node: &TestApp, url: &Url) -> String {
    assert_eq!(url.origin().ascii_serialization(), PUBLIC_URL, "{url}");
    format!("{}{}?{}", node.base, url.path(), url.query().unwrap_or_default())
}

async fn get(node: &TestApp, path_or_url: &str, cookie: &str) -> reqwest::Response {
    let url = if path_or_url.starts_with("http") { path_or_url.to_owned() } else { node.url(path_or_url) };
    node.bare_client().get(url).header("cookie", cookie).send().await.unwrap()
}

async fn record(node: &TestApp, cookie: &str) -> Recorder {
    let mut ws = Ws::open(&node.base, cookie).await;
    ws.until("chat history").await;
    Recorder::spawn(ws)
}

#[tokio::test]
#[ignore = "needs PostgreSQL and node: set LOBBY_TEST_POSTGRES, run npm ci --prefix tests/sso/oidc"]
async fn a_sign_in_begun_on_one_node_ends_on_another_and_holds_on_every_node() {
    let op = OidcProvider::start(&format!("{PUBLIC_URL}/auth/oidc/callback")).await;
    let gh = GitHub::start(None).await;
    let (_db, nodes) = nodes(3, |c| {
        c.public_url = Some(Url::parse(PUBLIC_URL).unwrap());
        // The test talks to each node's own address, as a balancer would
        // with Host kept: those are allowed too.
        c.allowed_hosts = vec!["127.0.0.1".parse().unwrap()];
        c.sign_in.oidc_issuer = Some(op.issuer.clone());
        c.sign_in.oidc_client_id = Some(oidc::CLIENT_ID.into());
        c.sign_in.oidc_client_secret = Some(Secret::new(oidc::CLIENT_SECRET));
        c.sign_in.oidc_name = Some("School".into());
        c.sign_in.github_client_id = Some(github::CLIENT_ID.into());
        c.sign_in.github_client_secret = Some(Secret::new(github::CLIENT_SECRET));
        c.sign_in.github_url = gh.url.clone();
        c.sign_in.github_api_url = gh.url.clone();
    })
    .await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // /auth/oidc on A; the provider sends the browser back, and the load
    // balancer picks B for the callback.
    let res = a.bare_client().get(a.url("/auth/oidc")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let before = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    let to_provider = Url::parse(&location(&res)).unwrap();
    let redirect = to_provider.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    assert_eq!(redirect, format!("{PUBLIC_URL}/auth/oidc/callback"), "one redirect URI for every node");
    let back = op.login(&to_provider, "alice").await;
    let res = get(b, &at(b, &back), &before).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", res.text().await.unwrap_or_default());
    assert_eq!(location(&res), "/profile");
    let alice = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    assert_ne!(alice, before);

    // The session works on a third node, and the first.
    for node in [c, a] {
        let page = get(node, "/profile", &alice).await.text().await.unwrap();
        assert!(page.contains("Welcome, alice!"), "on {}", node.base);
    }
    let sockets = [record(a, &alice).await, record(b, &alice).await, record(c, &alice).await];

    // Linking, with the session cached on every node before the sign-in
    // begins: begun on B, called back on C, seen on A.
    for node in [a, b, c] {
        assert_eq!(get(node, "/account", &alice).await.status(), StatusCode::OK);
    }
    let res = get(b, "/auth/github", &alice).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = gh.approve(&Url::parse(&location(&res)).unwrap()).await;
    let res = get(c, &at(c, &back), &alice).await;
    assert_eq!(location(&res), "/account?done=linked&provider=github");
    let account = get(a, "/account", &alice).await.text().await.unwrap();
    assert!(account.contains("The Octocat"), "{account}");

    // Logout on C closes the session's sockets on every node with 4401,
    // within a second, and no node lets the session back in.
    let started = tokio::time::Instant::now();
    let res = c.bare_client().post(c.url("/logout")).header("cookie", &alice).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for socket in &sockets {
        assert_eq!(socket.until_closed(Duration::from_secs(1)).await, Some(Some(4401)));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "closed within 1 s: {:?}", started.elapsed());
    for node in &nodes {
        assert_eq!(get(node, "/profile", &alice).await.status(), StatusCode::SEE_OTHER, "on {}", node.base);
        assert_eq!(connect(&node.base, Some(&alice), "", &[]).await.err(), Some(401));
    }

    // A state is spent on every node: replaying the callback on A is refused.
    let res = get(a, &at(a, &back), &alice).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
