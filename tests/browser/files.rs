//! Sharing files in the browser: the attach button (with the progress bar
//! and the text in the box as the caption), a file dropped on the
//! conversation, an image pasted into the box, the thumbnail opening the
//! full image, and a file too large refused before it is sent.

use super::*;

/// How many of each kind of file the conversation shows.
async fn shown_files(person: &Person) -> (usize, usize) {
    let counts = person
        .client
        .execute(
            "return [document.querySelectorAll('#messages .file-image img').length,
                     document.querySelectorAll('#messages a.file').length]",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(counts).unwrap()
}

async fn wait_files(person: &Person, images: usize, others: usize) {
    for _ in 0..200 {
        if shown_files(person).await == (images, others) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {images} images and {others} files, saw {:?}", shown_files(person).await);
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn people_attach_drop_and_paste_files_and_open_the_images() {
    let app = spawn_app_with(|c| c.files.max_upload = lobby::config::ByteSize(1 << 20)).await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await;
    open_chat_tab(&alice, &app.base, false).await;
    let bob_tab = open_chat_tab(&bob, &app.base, false).await;

    // The attach button's file chooser, with a caption typed first; the
    // progress bar shows while it goes.
    let dir = tempfile::TempDir::new().unwrap();
    let photo = dir.path().join("map.png");
    std::fs::write(&photo, common::images::png(600, 400)).unwrap();
    alice
        .client
        .execute(
            "const bar = document.getElementById('upload-progress');
             window.progressShown = false;
             new MutationObserver(() => { if (!bar.hidden) window.progressShown = true; })
               .observe(bar, { attributes: true });",
            vec![],
        )
        .await
        .unwrap();
    alice.fill("#m", "the way to the venue").await;
    alice.find("#attach-file").await.send_keys(photo.to_str().unwrap()).await.unwrap();
    wait_files(&bob, 1, 0).await;
    let line = wait_message(&bob, |m| m.contains("the way to the venue")).await;
    assert!(line.contains("alice"), "{line}");
    assert_eq!(alice.find("#m").await.prop("value").await.unwrap().as_deref(), Some(""), "the caption went");
    let shown = alice.client.execute("return window.progressShown", vec![]).await.unwrap();
    assert_eq!(shown, serde_json::json!(true), "the progress bar showed");
    alice.wait_text("#upload-status", |t| t == "map.png shared.").await;
    let mut loaded = serde_json::Value::Null;
    for _ in 0..100 {
        loaded = bob
            .client
            .execute(
                "const img = document.querySelector('#messages .file-image img');
                 return [img.alt, img.complete ? img.naturalWidth : 0, img.naturalHeight]",
                vec![],
            )
            .await
            .unwrap();
        if loaded[1] != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(loaded, serde_json::json!(["map.png", 400, 267]), "the thumbnail loaded");

    // Dropped on the conversation: a file that is no image, shown by name and size.
    alice
        .client
        .execute(
            "const files = new DataTransfer();
             files.items.add(new File(['the plan for Monday'], 'plan.txt', { type: 'text/plain' }));
             const zone = document.querySelector('.conversation');
             zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: files, bubbles: true, cancelable: true }));
             zone.dispatchEvent(new DragEvent('drop', { dataTransfer: files, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await
        .unwrap();
    wait_files(&bob, 1, 1).await;
    let named =
        bob.client.execute("return document.querySelector('#messages a.file').textContent", vec![]).await;
    assert_eq!(named.unwrap(), serde_json::json!("plan.txt 19 bytes"));

    // Pasted into the box: a screenshot, drawn here.
    alice
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const canvas = document.createElement('canvas');
             canvas.width = 300; canvas.height = 200;
             const pen = canvas.getContext('2d');
             pen.fillStyle = '#3a7'; pen.fillRect(0, 0, 300, 200);
             canvas.toBlob((blob) => {
               const clipboard = new DataTransfer();
               clipboard.items.add(new File([blob], 'image.png', { type: 'image/png' }));
               document.getElementById('m').dispatchEvent(
                 new ClipboardEvent('paste', { clipboardData: clipboard, bubbles: true, cancelable: true }));
               done();
             }, 'image/png');",
            vec![],
        )
        .await
        .unwrap();
    wait_files(&bob, 2, 1).await;

    // Too large: refused in the page, with the reason, before anything is sent.
    alice
        .client
        .execute(
            "const files = new DataTransfer();
             files.items.add(new File([new Uint8Array(2 << 20)], 'video.mp4', { type: 'video/mp4' }));
             document.querySelector('.conversation')
               .dispatchEvent(new DragEvent('drop', { dataTransfer: files, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await
        .unwrap();
    let said = alice.wait_text("#send-error", |t| !t.is_empty()).await;
    assert!(said.contains("video.mp4") && said.contains("at most"), "{said}");

    // Bob opens the first image: the full picture in a tab of its own.
    bob.find("#messages .file-image").await.click().await.unwrap();
    let mut opened = None;
    for _ in 0..100 {
        let tabs = bob.client.windows().await.unwrap();
        if let Some(tab) = tabs.into_iter().find(|t| *t != bob_tab) {
            opened = Some(tab);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    switch(&bob, &opened.expect("the image opens in a new tab")).await;
    let url = bob.wait_url(|u| u.path().starts_with("/files/")).await;
    assert!(url.path().ends_with("/map.png"), "{url}");
    let kind = bob.client.execute("return document.contentType", vec![]).await.unwrap();
    assert_eq!(kind, serde_json::json!("image/png"));
    switch(&bob, &bob_tab).await;

    bob.assert_accessible("chat with files").await;
    alice.assert_clean_console(&[]).await;
    // Chromium's own image viewer styles its page inline, which the files'
    // sandboxing CSP (the contract's) refuses: the image shows all the same.
    let problems: Vec<_> = bob
        .console()
        .await
        .into_iter()
        .filter(|(level, message)| {
            level != "INFO"
                && level != "DEBUG"
                && !(message.contains("/files/") && message.contains("Applying inline style violates"))
        })
        .collect();
    assert!(problems.is_empty(), "browser console: {problems:?}");
    alice.close().await;
    bob.close().await;
}
