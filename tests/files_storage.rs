//! Files kept in a real S3-protocol server (moto's, started and stopped by
//! each test), and files on a cluster: what one node stores, another serves.
//! These need moto_server or PostgreSQL, so a plain `cargo test` skips them;
//! `.ci/run` installs moto and runs them (`--include-ignored`).

mod common;

use std::time::Duration;

use common::{cluster, images::*, s3::S3Server, ws::*, *};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const LOBBY: i64 = 1;

async fn get(client: &reqwest::Client, base: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client.get(format!("{base}{url}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("a string: {value}")).to_owned()
}

/// Deletes a message the way the page does, and waits for the word back.
async fn delete_message(base: &str, cookie: &str, id: &Value) {
    let mut ws = Ws::open(base, cookie).await;
    ws.until("chat history").await;
    ws.emit("delete message", json!({"id": id})).await;
    assert_eq!(&ws.until("message deleted").await["id"], id);
}

#[tokio::test]
#[ignore = "needs moto_server (pip install 'moto[server]==5.2.1'; .ci/run installs it)"]
async fn on_s3_a_photo_loses_its_location_is_served_in_ranges_and_goes_with_its_message() {
    let s3 = S3Server::start().await;
    s3.bucket("lobby-files").await;
    let app = spawn_app_with(|c| s3.configure(c, "lobby-files")).await;
    let cookie = app.cookie("alice").await;
    let alice = app.client_with(&cookie);

    let photo = jpeg_with_gps(1600, 1200);
    let (status, message) =
        upload(&alice, &app.base, LOBBY, form("trip.jpg", "image/jpeg", photo.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let file = &message["files"][0];
    let (url, thumbnail) = (string(&file["url"]), string(&file["thumbnail"]));
    let objects = s3.objects("lobby-files").await;
    assert_eq!(objects.len(), 2, "the photo and its thumbnail: {objects:?}");
    assert!(objects.iter().all(|key| key.starts_with("lobby/files/")), "under the prefix: {objects:?}");

    let res = get(&alice, &app.base, &url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/jpeg");
    let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
    let stored = res.bytes().await.unwrap();
    assert_eq!(stored.len(), photo.len());
    assert_eq!(exif_facts(&stored), (0, true), "no location left in the stored photo");
    let res = get(&alice, &app.base, &url, &[("range", "bytes=100-199")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), stored[100..200]);
    assert_eq!(
        get(&alice, &app.base, &url, &[("if-none-match", &etag)]).await.status(),
        StatusCode::NOT_MODIFIED
    );
    let small = get(&alice, &app.base, &thumbnail, &[]).await.bytes().await.unwrap();
    let small = image::load_from_memory(&small).unwrap();
    assert_eq!((small.width(), small.height()), (400, 300));

    // Bigger than one part (5 MiB): sent in parts, served whole.
    let big: Vec<u8> = (0..7_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (status, second) =
        upload(&alice, &app.base, LOBBY, form("data.bin", "application/octet-stream", big.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let served =
        get(&alice, &app.base, &string(&second["files"][0]["url"]), &[]).await.bytes().await.unwrap();
    assert!(served == big, "the same {} bytes back", big.len());
    assert_eq!(s3.unfinished_uploads("lobby-files").await, 0);

    // Deleted with their messages: the store is empty again.
    delete_message(&app.base, &cookie, &message["id"]).await;
    delete_message(&app.base, &cookie, &second["id"]).await;
    assert_eq!(get(&alice, &app.base, &url, &[]).await.status(), StatusCode::NOT_FOUND);
    assert!(
        eventually(Duration::from_secs(15), || async { s3.objects("lobby-files").await.is_empty() }).await,
        "left: {:?}",
        s3.objects("lobby-files").await
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await
    );
}

#[tokio::test]
#[ignore = "needs moto_server (pip install 'moto[server]==5.2.1'; .ci/run installs it)"]
async fn on_s3_an_upload_cut_off_midway_leaves_no_object_and_no_unfinished_parts() {
    let s3 = S3Server::start().await;
    s3.bucket("cut-off").await;
    let app = spawn_app_with(|c| s3.configure(c, "cut-off")).await;
    let cookie = app.cookie("alice").await;
    let mut tcp = begin_raw_upload(&app.base, &cookie, 9_000_000, Some("half.bin")).await;
    // Past one part: a part is in the store when the connection drops.
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &vec![1u8; 6 << 20]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { s3.unfinished_uploads("cut-off").await == 1 }).await,
        "the upload began"
    );
    drop(tcp);
    assert!(
        eventually(Duration::from_secs(15), || async {
            s3.unfinished_uploads("cut-off").await == 0
                && s3.objects("cut-off").await.is_empty()
                && app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await,
        "left: {:?}, {} unfinished",
        s3.objects("cut-off").await,
        s3.unfinished_uploads("cut-off").await
    );
    assert_eq!(app.scalar("SELECT count(*) FROM messages").await, 0);
}

/// Two nodes on one database and one store: a file uploaded through the
/// first is served, and deleted, through the second.
async fn shared_between_nodes(apps: &[TestApp]) {
    let (first, second) = (&apps[0], &apps[1]);
    let cookie = first.cookie("alice").await;
    let photo = png(900, 600);
    let (status, message) =
        upload(&first.client_with(&cookie), &first.base, LOBBY, form("map.png", "image/png", photo.clone()))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let file = &message["files"][0];
    let other = second.client_with(&cookie);
    let res = get(&other, &second.base, &string(&file["url"]), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), photo);
    let res = get(&other, &second.base, &string(&file["thumbnail"]), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/jpeg");

    delete_message(&second.base, &cookie, &message["id"]).await;
    let alice = first.client_with(&cookie);
    assert_eq!(get(&alice, &first.base, &string(&file["url"]), &[]).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (set LOBBY_TEST_POSTGRES) and moto_server (pip install 'moto[server]==5.2.1')"]
async fn on_a_cluster_with_s3_a_file_uploaded_on_one_node_is_served_by_another() {
    let s3 = S3Server::start().await;
    s3.bucket("cluster").await;
    let (_db, apps) = cluster::nodes(2, |c| s3.configure(c, "cluster")).await;
    shared_between_nodes(&apps).await;
    assert!(
        eventually(Duration::from_secs(15), || async { s3.objects("cluster").await.is_empty() }).await,
        "left: {:?}",
        s3.objects("cluster").await
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL (set LOBBY_TEST_POSTGRES)"]
async fn on_a_cluster_with_a_shared_directory_a_file_uploaded_on_one_node_is_served_by_another() {
    let (db, apps) = cluster::nodes(2, |_| {}).await;
    shared_between_nodes(&apps).await;
    let dir = db.files_dir();
    assert!(
        eventually(Duration::from_secs(15), || async {
            std::fs::read_dir(dir.join("files"))
                .into_iter()
                .flatten()
                .flatten()
                .all(|folder| std::fs::read_dir(folder.path()).map_or(true, |mut f| f.next().is_none()))
        })
        .await
    );
}
