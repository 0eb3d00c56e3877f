//! The second security review's rules ([hardening2] in the protocol), each
//! tried from outside with real clients: sockets that dribble bytes, other
//! client addresses as other loopback source addresses (127.0.0.2, …), a
//! server with a low open-file limit. On SQLite, and on PostgreSQL when
//! `LOBBY_TEST_POSTGRES` is set.

mod common;

use common::{raw::*, *};
use reqwest::StatusCode;

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers().get("retry-after")?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn every_429_says_when_to_retry() {
    let app = spawn_app_with(|c| {
        c.login_failure_burst = 2;
        c.live.max_sockets_per_user = 1;
    })
    .await;
    let alice = app.user("alice").await;
    let guess = [("current", "not my password"), ("new", "a brand new secret")];
    for _ in 0..2 {
        let res = post(&alice, app.url("/account/password"), &guess).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = post(&alice, app.url("/account/password"), &guess).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the password-change throttle");
    assert!(retry_after(&res).is_some_and(|secs| secs >= 1), "{:?}", res.headers());

    // One socket too many for the user.
    let cookie = app.cookie("bob").await;
    let _tab = common::ws::Ws::open(&app.base, &cookie).await;
    let host = app.base.trim_start_matches("http://");
    let (status, head) = request(&app.base, &handshake(host, &cookie, "")).await;
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("\r\nretry-after: "), "{head}");
}
