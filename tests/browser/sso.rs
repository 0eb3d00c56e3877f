//! Signing in through GitHub (the stand-in) and an OpenID Connect provider
//! (oidc-provider under node, whose login and consent pages are clicked
//! through like a person would) in a real browser, and linking GitHub from
//! the account page. Needs node and `npm ci --prefix tests/sso/oidc` as well
//! as chromium: ignored by a plain `cargo test`, failing without them.

use crate::{
    common::{
        github::{self, GitHub},
        oidc::{self, OidcProvider},
        *,
    },
    driver::Driver,
};
use lobby::config::Secret;

#[tokio::test]
#[ignore = "needs chromium + chromium-driver and node with tests/sso/oidc installed (npm ci --prefix tests/sso/oidc)"]
async fn each_sign_in_button_lands_on_the_profile_and_github_links_from_the_account_page() {
    let op = OidcProvider::start("http://127.0.0.1:1/unused").await;
    let gh = GitHub::start(None).await;
    let app = spawn_app_with(|c| {
        c.sign_in.github_client_id = Some(github::CLIENT_ID.into());
        c.sign_in.github_client_secret = Some(Secret::new(github::CLIENT_SECRET));
        c.sign_in.github_url = gh.url.clone();
        c.sign_in.github_api_url = gh.url.clone();
        c.sign_in.oidc_issuer = Some(op.issuer.clone());
        c.sign_in.oidc_client_id = Some(oidc::CLIENT_ID.into());
        c.sign_in.oidc_client_secret = Some(Secret::new(oidc::CLIENT_SECRET));
        c.sign_in.oidc_name = Some("School".into());
    })
    .await;
    op.allow_redirects(&[app.url("/auth/oidc/callback")]).await;
    let driver = Driver::start().await;

    // "Log in with GitHub": GitHub (the stand-in) approves at once.
    let octo = driver.person().await;
    octo.goto(&app.url("/")).await;
    assert_eq!(octo.text("#login-github").await, "Log in with GitHub");
    octo.assert_accessible("/ with sign-in buttons").await;
    octo.screenshot("sso-home-desktop-light", 1280, 900).await;
    octo.click("#login-github").await;
    octo.wait_url(|u| u.path() == "/profile").await;
    assert_eq!(octo.text("#welcome").await, "Welcome, octocat!");
    octo.assert_clean_console(&[]).await;

    // "Log in with School": the provider's own login and consent pages.
    let alice = driver.person().await;
    alice.goto(&app.url("/?next=/profile")).await;
    assert_eq!(alice.text("#login-oidc").await, "Log in with School");
    alice.click("#login-oidc").await;
    alice.fill("#username", "alice").await;
    alice.click("#sign-in").await;
    alice.click("#allow").await;
    alice.wait_url(|u| u.path() == "/profile" && u.port() == Some(app.addr.port())).await;
    assert_eq!(alice.text("#welcome").await, "Welcome, alice!");

    // Her account has no password and one way in; she connects GitHub (as
    // hubot there) from the account page.
    alice.goto(&app.url("/account")).await;
    assert!(alice.find("#set-password").await.is_displayed().await.unwrap());
    alice.assert_accessible("/account of a provider's account").await;
    gh.sign_in_as("hubot");
    assert_eq!(alice.text("#connect-github").await, "Connect GitHub");
    alice.click("#connect-github").await;
    alice.wait_url(|u| u.path() == "/account" && u.query().is_some_and(|q| q.contains("done=linked"))).await;
    let notice = alice.text("#account-notice").await;
    assert_eq!(notice, "GitHub is connected: you can log in with it.");
    let listed = alice.text("#identities").await;
    assert!(listed.contains("School") && listed.contains("GitHub"), "{listed}");
    alice.assert_accessible("/account with two providers").await;
    alice.screenshot("sso-account-desktop-light", 1280, 900).await;
    alice.screenshot("sso-account-phone-light", 390, 844).await;
    alice.client.set_window_size(1280, 900).await.unwrap();

    // From now on "Log in with GitHub" (as hubot) is alice.
    alice.click("a#logout").await;
    alice.wait_url(|u| u.path() == "/").await;
    alice.click("#login-github").await;
    alice.wait_url(|u| u.path() == "/profile").await;
    assert_eq!(alice.text("#welcome").await, "Welcome, alice!");
    alice.assert_clean_console(&[]).await;

    octo.close().await;
    alice.close().await;
}
