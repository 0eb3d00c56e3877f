//! Prometheus metrics on METRICS_ADDR, after real traffic. (A test binary of
//! its own: a process has one metrics recorder.)

mod common;

use std::time::Duration;

use common::{ws::*, *};

/// The value of the first sample of `name` (with `labels`, if any) in `text`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_what_happens() {
    let app = spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics = format!("http://{}/metrics", app.metrics.expect("metrics are served"));
    let cookie = app.cookie("alice").await;
    assert_eq!(app.login(&app.client(), "alice", "wrong password!").await.status(), 401);
    let mut ws = Ws::open(&app.base, &cookie).await;
    ws.until("chat history").await;
    ws.chat("hello").await;
    ws.until("chat message").await;
    ws.send_text("not json".into()).await;
    ws.until("error").await;

    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&text, "lobby_connections", ""), Some(1.0), "{text}");
    assert_eq!(sample(&text, "lobby_users_online", ""), Some(1.0));
    assert_eq!(sample(&text, "lobby_messages_committed_total", ""), Some(1.0));
    assert_eq!(sample(&text, "lobby_refused_frames_total", "code=\"bad_request\""), Some(1.0));
    assert_eq!(sample(&text, "lobby_logins_total", "outcome=\"refused\""), Some(1.0));
    assert_eq!(sample(&text, "lobby_registrations_total", "outcome=\"ok\""), Some(1.0));
    assert!(sample(&text, "lobby_commit_seconds_count", "").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "lobby_db_pool_size", "").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "lobby_hash_queue", "").is_some());

    drop(ws);
    let closed = eventually(Duration::from_secs(2), || async {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        sample(&text, "lobby_connections", "") == Some(0.0)
            && sample(&text, "lobby_socket_closes_total", "").is_some()
    });
    assert!(closed.await);
    // Not on the public port.
    assert_eq!(reqwest::get(app.url("/metrics")).await.unwrap().status(), 404);
}
