//! Files shared in rooms, end to end on either engine: uploads as chat
//! messages, what is served and how, the location taken out of photos,
//! thumbnails and what gets none, limits, privacy, deletion, and what a
//! failed upload leaves (nothing).

mod common;

use std::{path::Path, time::Duration};

use common::{images::*, ws::*, *};
use image::ImageFormat;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const LOBBY: i64 = 1;

async fn person(app: &TestApp, name: &str) -> (reqwest::Client, String) {
    let cookie = app.cookie(name).await;
    (app.client_with(&cookie), cookie)
}

async fn fetch(
    client: &reqwest::Client,
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client.get(app.url(url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

/// Every file under `dir`, however deep.
fn stored_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { folders.push(path) } else { found.push(path) }
        }
    }
    found
}

fn assert_sandboxed(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff", "{}", res.url());
    assert_eq!(
        h.get(header::CONTENT_SECURITY_POLICY).unwrap(),
        "sandbox; default-src 'none'",
        "{}",
        res.url()
    );
}

async fn make_room(client: &reqwest::Client, app: &TestApp, name: &str, kind: &str, people: &[&str]) -> i64 {
    let res = client
        .post(app.url("/api/rooms"))
        .json(&json!({"name": name, "kind": kind, "people": people}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn an_image_is_a_message_with_its_file_live_in_history_since_and_scrollback() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let (bob, bob_cookie) = person(&app, "bob").await;
    let mut bob_ws = Ws::open(&app.base, &bob_cookie).await;
    bob_ws.until("chat history").await;
    bob_ws.chat("before").await;
    let before = bob_ws.until("chat message").await["id"].as_i64().unwrap();

    let photo = png(1200, 800);
    let form = form("holiday photo.png", "image/png", photo.clone()).text("message", "look at this");
    let (status, message) = upload(&alice, &app.base, LOBBY, form).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(
        (message["message"].clone(), message["username"].clone()),
        (json!("look at this"), json!("alice"))
    );
    let file = &message["files"][0];
    assert_eq!(file["name"], "holiday photo.png");
    assert_eq!(file["type"], "image/png");
    assert_eq!(file["size"], photo.len());
    assert_eq!((file["width"].clone(), file["height"].clone()), (json!(1200), json!(800)));
    let url = file["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/files/{}/holiday%20photo.png", file["id"]));
    let thumbnail =
        file["thumbnail"].as_str().expect("an image has a thumbnail when its message goes out").to_owned();

    // Live, the same as the answer.
    let live = bob_ws.until("chat message").await;
    assert_eq!(live["files"], message["files"]);
    assert_eq!(live["id"], message["id"]);

    // The file, inline as what its bytes are; the thumbnail within 400 × 400.
    let res = fetch(&bob, &app, &url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_sandboxed(&res);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/png");
    assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("inline"));
    assert_eq!(res.bytes().await.unwrap(), photo);
    let res = fetch(&bob, &app, &thumbnail, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_sandboxed(&res);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/jpeg");
    let small = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (400, 267));

    // Scrollback and `since` carry it too.
    let page: Value = bob.get(app.url("/api/messages")).send().await.unwrap().json().await.unwrap();
    let listed = page["messages"].as_array().unwrap().iter().find(|m| m["id"] == message["id"]).unwrap();
    assert_eq!(listed["files"], message["files"]);
    let mut later = connect(&app.base, Some(&bob_cookie), &format!("?since={before}"), &[]).await.unwrap();
    let history = later.until("chat history").await;
    assert_eq!(history[0]["files"], message["files"]);
    // A message without a file says nothing of files.
    assert!(page["messages"][0].get("files").is_none());
}

#[tokio::test]
async fn what_is_not_one_of_the_four_image_formats_is_a_download_whatever_it_claims() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let disguised = [
        ("cat.png", "image/png", b"<html><script>alert(document.cookie)</script></html>".to_vec()),
        (
            "logo.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
        ("notes.gif", "image/gif", b"%PDF-1.4 not a gif at all".to_vec()),
        ("r\u{e9}sum\u{e9}.txt", "text/plain", b"plain words".to_vec()),
    ];
    for (name, claimed, bytes) in disguised {
        let (status, message) = upload(&alice, &app.base, LOBBY, form(name, claimed, bytes.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {message}");
        let file = &message["files"][0];
        assert_eq!(file["type"], "application/octet-stream", "{name}");
        assert_eq!((file["width"].clone(), file["thumbnail"].clone()), (Value::Null, Value::Null), "{name}");
        assert_eq!(message["message"], "", "no caption");
        let res = fetch(&alice, &app, file["url"].as_str().unwrap(), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_sandboxed(&res);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/octet-stream", "{name}");
        let disposition = res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_owned();
        assert!(disposition.starts_with("attachment; filename="), "{name}: {disposition}");
        assert_eq!(res.bytes().await.unwrap(), bytes);
    }
}

#[tokio::test]
async fn the_location_leaves_jpeg_png_and_webp_photos_and_their_pixels_stay() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    for (name, bytes, format) in [
        ("gps.jpg", jpeg_with_gps(320, 240), ImageFormat::Jpeg),
        ("gps.png", png_with_gps(320, 240), ImageFormat::Png),
        ("gps.webp", webp_with_gps(320, 240), ImageFormat::WebP),
    ] {
        assert_eq!(exif_facts(&bytes), (4, true), "{name} has its location before");
        let (status, message) =
            upload(&alice, &app.base, LOBBY, form(name, "image/jpeg", bytes.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {message}");
        let file = &message["files"][0];
        assert!(file["thumbnail"].is_string(), "{name}");
        let stored = fetch(&alice, &app, file["url"].as_str().unwrap(), &[]).await.bytes().await.unwrap();
        assert_eq!(stored.len(), bytes.len(), "{name}: nothing added or taken but the location's bytes");
        assert_eq!(exif_facts(&stored), (0, true), "{name}: no GPS field left, the rest kept");
        let (before, after) = (
            image::load_from_memory_with_format(&bytes, format).unwrap(),
            image::load_from_memory_with_format(&stored, format).unwrap(),
        );
        assert_eq!(before.as_bytes(), after.as_bytes(), "{name}: the same pixels");
        let differing = bytes.iter().zip(stored.iter()).filter(|(a, b)| a != b).count();
        assert!(differing <= 64, "{name}: only the location changed ({differing} bytes)");
    }
}

#[tokio::test]
async fn a_corrupt_image_and_a_50_megapixel_one_stay_files_without_thumbnails() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let mut corrupt = png(640, 480);
    let cut = corrupt.len() / 3;
    corrupt.truncate(cut);
    corrupt.extend_from_slice(&[0xAB; 512]);
    let (status, message) = upload(&alice, &app.base, LOBBY, form("broken.png", "image/png", corrupt)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(message["files"][0]["type"], "image/png", "judged by its bytes");
    assert_eq!(message["files"][0]["thumbnail"], Value::Null);

    let huge = png_50_megapixels();
    let (status, message) =
        upload(&alice, &app.base, LOBBY, form("huge.png", "image/png", huge.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let file = &message["files"][0];
    assert_eq!((file["width"].clone(), file["height"].clone()), (json!(10_000), json!(5_000)));
    assert_eq!(file["thumbnail"], Value::Null, "over 40 megapixels: no thumbnail");
    assert_eq!(fetch(&alice, &app, file["url"].as_str().unwrap(), &[]).await.bytes().await.unwrap(), huge);
    // The server is well: the next image gets its thumbnail.
    let (_, message) = upload(
        &alice,
        &app.base,
        LOBBY,
        form("small.gif", "image/gif", encode(&picture(50, 50), ImageFormat::Gif)),
    )
    .await;
    assert_eq!(message["files"][0]["type"], "image/gif");
    assert!(message["files"][0]["thumbnail"].is_string());
}

#[tokio::test]
async fn entity_tags_and_ranges_are_honoured_on_every_answer() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (_, message) =
        upload(&alice, &app.base, LOBBY, form("data.bin", "application/octet-stream", bytes.clone())).await;
    let url = message["files"][0]["url"].as_str().unwrap().to_owned();
    let res = fetch(&alice, &app, &url, &[]).await;
    let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(res.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "private, no-cache");

    let res = fetch(&alice, &app, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_sandboxed(&res);
    assert_eq!(res.headers()[header::ETAG].to_str().unwrap(), etag);

    let res = fetch(&alice, &app, &url, &[("range", "bytes=10-19")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_sandboxed(&res);
    assert_eq!(res.headers()[header::CONTENT_RANGE], "bytes 10-19/100000");
    assert_eq!(res.bytes().await.unwrap(), bytes[10..20]);
    let res = fetch(&alice, &app, &url, &[("range", "bytes=-5")]).await;
    assert_eq!(res.bytes().await.unwrap(), bytes[99_995..]);
    let res = fetch(&alice, &app, &url, &[("range", "bytes=200000-")]).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(res.headers()[header::CONTENT_RANGE], "bytes */100000");
    assert_sandboxed(&res);
    let res = fetch(&alice, &app, &url, &[("range", "bytes=0-9"), ("if-range", "\"old\"")]).await;
    assert_eq!(res.status(), StatusCode::OK, "a changed entity: the whole of it");
    assert_eq!(res.bytes().await.unwrap().len(), bytes.len());

    // A thumbnail has its own tag and ranges.
    let (_, message) = upload(&alice, &app.base, LOBBY, form("p.png", "image/png", png(800, 800))).await;
    let thumbnail = message["files"][0]["thumbnail"].as_str().unwrap().to_owned();
    let res = fetch(&alice, &app, &thumbnail, &[]).await;
    let tag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_ne!(tag, etag);
    let whole = res.bytes().await.unwrap();
    assert_eq!(
        fetch(&alice, &app, &thumbnail, &[("if-none-match", &tag)]).await.status(),
        StatusCode::NOT_MODIFIED
    );
    let res = fetch(&alice, &app, &thumbnail, &[("range", "bytes=0-3")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), whole[..4]);
}

#[tokio::test]
async fn limits_size_emptiness_membership_and_uploads_per_hour() {
    let app = spawn_app_with(|c| {
        c.files.max_upload = lobby::config::ByteSize(100 * 1024);
        c.files.uploads_per_hour = 3;
    })
    .await;
    let (alice, alice_cookie) = person(&app, "alice").await;
    let (bob, _) = person(&app, "bob").await;

    // Over the limit, declared: refused before the body is read (nothing more is sent).
    let mut tcp = begin_raw_upload(&app.base, &alice_cookie, 10 << 20, None).await;
    let (status, answer) = common::raw::read_head(&mut tcp).await;
    assert_eq!(status, 413, "{answer}");

    // Over the limit, streamed without a length: refused once past it.
    let chunks = futures_util::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![7u8; 8192])));
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(chunks)).file_name("big.bin");
    let res = alice
        .post(app.url("/api/rooms/1/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    } // (or the connection closed under the rest of the body: refused all the same)

    let (status, answer) =
        upload(&alice, &app.base, LOBBY, form("empty.txt", "text/plain", Vec::new())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let res = alice.post(app.url("/api/rooms/1/files")).json(&json!({"file": "x"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) =
        upload(&app.bare_client(), &app.base, LOBBY, form("a.txt", "text/plain", b"a".to_vec())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Not a member: 404, the same as a room that does not exist.
    let private = make_room(&alice, &app, "secret", "private", &[]).await;
    let (status, not_member) =
        upload(&bob, &app.base, private, form("a.txt", "text/plain", b"a".to_vec())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, never) = upload(&bob, &app.base, 999_999, form("a.txt", "text/plain", b"a".to_vec())).await;
    assert_eq!(not_member, never);

    // Three accepted uploads an hour; the fourth waits, and is told how long.
    for i in 0..3 {
        let (status, _) =
            upload(&alice, &app.base, LOBBY, form("a.txt", "text/plain", vec![b'a'; i + 1])).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let res = alice
        .post(app.url("/api/rooms/1/files"))
        .multipart(form("a.txt", "text/plain", b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&wait), "{wait}");
    // Refused uploads kept nothing.
    assert!(
        eventually(Duration::from_secs(10), || async {
            app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await
    );
    assert_eq!(stored_files(&app.db.files_dir()).len(), 3);
}

#[tokio::test]
async fn files_are_for_members_of_their_room_only() {
    let app = spawn_app().await;
    let (alice, alice_cookie) = person(&app, "alice").await;
    let (bob, _) = person(&app, "bob").await;
    let (mallory, _) = person(&app, "mallory").await;
    let room = make_room(&alice, &app, "ops", "private", &["bob"]).await;
    let (status, message) =
        upload(&alice, &app.base, room, form("plan.png", "image/png", png(500, 500))).await;
    assert_eq!(status, StatusCode::CREATED);
    let url = message["files"][0]["url"].as_str().unwrap().to_owned();
    let thumbnail = message["files"][0]["thumbnail"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&bob, &app, &url, &[]).await.status(), StatusCode::OK);

    let unknown = fetch(&mallory, &app, "/files/999999/plan.png", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_sandboxed(&unknown);
    let unknown = unknown.text().await.unwrap();
    let refused = |client: reqwest::Client, path: String| {
        let app = &app;
        let unknown = unknown.clone();
        async move {
            let res = fetch(&client, app, &path, &[]).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
            assert_sandboxed(&res);
            assert_eq!(res.text().await.unwrap(), unknown, "{path}: as for an id never used");
        }
    };
    // Not a member, not logged in, or the wrong name.
    refused(mallory.clone(), url.clone()).await;
    refused(mallory.clone(), thumbnail.clone()).await;
    refused(app.bare_client(), url.clone()).await;
    refused(bob.clone(), url.replace("plan.png", "other.png")).await;
    refused(bob.clone(), "/files/not-a-number/x".into()).await;
    refused(bob.clone(), "/files/1/2/3/4".into()).await;

    // Removed from the room: gone for them.
    let res = alice.delete(app.url(&format!("/api/rooms/{room}/members/bob"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused(bob.clone(), url.clone()).await;
    refused(bob.clone(), thumbnail.clone()).await;
    assert_eq!(fetch(&alice, &app, &url, &[]).await.status(), StatusCode::OK);

    // Archived: gone for everyone.
    assert_eq!(
        alice.delete(app.url(&format!("/api/rooms/{room}"))).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    refused(app.client_with(&alice_cookie), url.clone()).await;

    // An open room's files are its members' too: a visitor who has not joined gets none.
    let open = make_room(&alice, &app, "public", "open", &[]).await;
    let (_, message) = upload(&alice, &app.base, open, form("o.txt", "text/plain", b"open".to_vec())).await;
    let open_url = message["files"][0]["url"].as_str().unwrap().to_owned();
    refused(mallory.clone(), open_url.clone()).await;
    mallory.post(app.url(&format!("/api/rooms/{open}/join"))).send().await.unwrap();
    assert_eq!(fetch(&mallory, &app, &open_url, &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_the_message_deletes_its_file_and_thumbnail() {
    let app = spawn_app().await;
    let (alice, alice_cookie) = person(&app, "alice").await;
    let (_, message) = upload(
        &alice,
        &app.base,
        LOBBY,
        form("p.webp", "image/webp", encode(&picture(600, 300), ImageFormat::WebP)),
    )
    .await;
    let (url, thumbnail) = (
        message["files"][0]["url"].as_str().unwrap().to_owned(),
        message["files"][0]["thumbnail"].as_str().unwrap().to_owned(),
    );
    let dir = app.db.files_dir();
    assert_eq!(stored_files(&dir).len(), 2, "the file and its thumbnail");
    let mut ws = Ws::open(&app.base, &alice_cookie).await;
    ws.until("chat history").await;
    ws.emit("delete message", json!({"id": message["id"]})).await;
    assert_eq!(ws.until("message deleted").await["id"], message["id"]);
    assert_eq!(fetch(&alice, &app, &url, &[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(fetch(&alice, &app, &thumbnail, &[]).await.status(), StatusCode::NOT_FOUND);
    assert!(
        eventually(Duration::from_secs(10), || async { stored_files(&dir).is_empty() }).await,
        "left: {:?}",
        stored_files(&dir)
    );
    assert_eq!(app.scalar("SELECT count(*) FROM files").await, 0);
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await
    );
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_and_the_sweep_clears_a_crash_s_leftovers() {
    let app = spawn_app().await;
    let (_, cookie) = person(&app, "alice").await;
    let dir = app.db.files_dir();
    let mut tcp = begin_raw_upload(&app.base, &cookie, 2_000_000, Some("half.bin")).await;
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &vec![1u8; 600_000]).await.unwrap();
    let started = eventually(Duration::from_secs(5), || async {
        app.scalar("SELECT count(*) FROM unowned_objects").await == 1
    })
    .await;
    assert!(started, "the upload began");
    drop(tcp);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored_files(&dir).is_empty() && app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await,
        "left: {:?}",
        stored_files(&dir)
    );
    assert_eq!(app.scalar("SELECT count(*) FROM messages").await, 0);

    // A server killed mid-upload leaves an object and its unfinished parts,
    // listed as unowned: once due, the sweep deletes them.
    let leftover = dir.join("files/ab/abcdef");
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half a file").unwrap();
    std::fs::write(dir.join("files/ab/abcdef#1"), b"a part").unwrap();
    app.db.execute("INSERT INTO unowned_objects (object, due_at) VALUES ('files/ab/abcdef', 0)").await;
    assert!(eventually(Duration::from_secs(10), || async { stored_files(&dir).is_empty() }).await);
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.scalar("SELECT count(*) FROM unowned_objects").await == 0
        })
        .await
    );
}

#[tokio::test]
async fn postgresql_without_a_store_refuses_to_start_and_says_why() {
    let mut config = lobby::Config::defaults();
    config.database_url = lobby::config::DatabaseUrl::new("postgres://lobby@127.0.0.1:1/lobby");
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    let Err(err) = lobby::Application::build(config).await else { panic!("it started") };
    assert!(err.to_string().contains("STORAGE_URL is not set"), "{err}");
}
