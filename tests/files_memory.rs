//! What an upload costs the server in memory: the body is streamed to
//! storage, never held whole (issue 21: RSS while 20 uploads of 10 MiB run
//! at once rises by less than 40 MiB). Measured on the real binary.

mod common;

use std::time::Duration;

use common::{images::*, *};
use reqwest::StatusCode;

/// Every file under `dir`, however deep.
fn stored_files(dir: &std::path::Path) -> usize {
    let mut found = 0;
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.path().is_dir() { folders.push(entry.path()) } else { found += 1 }
        }
    }
    found
}

#[tokio::test]
#[ignore = "fails today: RSS rises ~50 MiB (debug build), over the issue's 40; run with --ignored while fixing"]
async fn twenty_uploads_of_10_mib_at_once_raise_the_server_s_memory_by_less_than_40_mib() {
    let db = TestDb::fresh().await;
    let server = common::process::Server::start(&db, &[("CHAT_BURST", "1000")], None).await;
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let res = client
        .post(server.url("/register"))
        .form(&[("username", "alice"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let ten_mib = || {
        let chunks =
            futures_util::stream::iter((0..160).map(|_| Ok::<_, std::io::Error>(vec![7u8; 64 << 10])));
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), 10 << 20);
        reqwest::multipart::Form::new().part("file", part.file_name("big.bin"))
    };
    // One first, so what every upload shares (pools, buffers) is counted out.
    let (status, _) = upload(&client, &server.base, 1, ten_mib()).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = server.rss_kib();
    let uploads =
        futures_util::future::join_all((0..20).map(|_| upload(&client, &server.base, 1, ten_mib())));
    let mut uploads = std::pin::pin!(uploads);
    let mut peak = before;
    let answers = loop {
        tokio::select! {
            answers = &mut uploads => break answers,
            _ = tokio::time::sleep(Duration::from_millis(10)) => peak = peak.max(server.rss_kib()),
        }
    };
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::CREATED), "{answers:?}");
    let rise = peak.saturating_sub(before);
    assert!(rise < 40 << 10, "RSS rose by {} MiB (from {} MiB)", rise >> 10, before >> 10);
    assert_eq!(stored_files(&db.files_dir()), 21);
}
