//! Starts and drives the OpenID Connect provider of `tests/sso/oidc`
//! (oidc-provider under node; see `server.js` there for its accounts,
//! interaction and admin endpoints). Each test starts its own, on a free
//! port, and it ends with the test (it is killed on drop, and it exits by
//! itself when its standard input closes).
//!
//! Tests that use it are `#[ignore = "needs node and tests/sso/oidc
//! installed (npm ci)"]`: run them with `npm ci --prefix tests/sso/oidc`
//! then `cargo test --test sso_providers -- --ignored`. Run so
//! without node or the packages, they fail saying what is missing, rather
//! than pass having done nothing.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{StatusCode, header};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};
use url::Url;

pub const CLIENT_ID: &str = "lobby";
pub const CLIENT_SECRET: &str = "lobby-test-secret";

pub struct OidcProvider {
    /// Its issuer, `http://127.0.0.1:PORT` (what `OIDC_ISSUER` is set to).
    pub issuer: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
    admin: reqwest::Client,
}

/// Requests the provider served, by endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Stats {
    pub discovery: u32,
    pub jwks: u32,
    pub token: u32,
    pub userinfo: u32,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sso/oidc")
}

impl OidcProvider {
    /// Starts the provider on a free port with Lobby's client registered for
    /// `redirect_uri`.
    pub async fn start(redirect_uri: &str) -> Self {
        Self::start_on(0, redirect_uri).await
    }

    /// Starts the provider on `port` (0: any free one).
    pub async fn start_on(port: u16, redirect_uri: &str) -> Self {
        assert!(
            dir().join("node_modules/oidc-provider/package.json").exists(),
            "this test needs the test provider's packages: run `npm ci --prefix tests/sso/oidc`"
        );
        let mut child = Command::new("node")
            .arg("server.js")
            .arg(port.to_string())
            .current_dir(dir())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URIS", redirect_uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs node on the PATH to run tests/sso/oidc/server.js: {e}")
            });
        // Its warnings (the in-memory adapter…) are kept, to show if it fails.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("ready ") {
                    return Some(issuer.to_owned());
                }
            }
            None
        })
        .await;
        let Ok(Some(issuer)) = ready else {
            panic!("the test provider did not start: {}", stderr.lock().unwrap());
        };
        // Nothing more comes on stdout, but keep reading it so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let admin = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { issuer, child, stderr, admin }
    }

    /// Stops the provider now (to test a provider that is down).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// A new signing key, used from now on; the old one stays published
    /// unless `retire`. Returns the new key's id.
    pub async fn rotate(&self, retire: bool) -> String {
        let url = format!("{}/admin/rotate{}", self.issuer, if retire { "?retire=1" } else { "" });
        let res = self.admin.post(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<serde_json::Value>().await.unwrap()["kid"].as_str().unwrap().to_owned()
    }

    /// What the token endpoint does from now on (see server.js): "normal",
    /// "unpublished-key", "wrong-nonce", "slow"…
    pub async fn set_mode(&self, mode: &str) {
        let res = self
            .admin
            .post(format!("{}/admin/mode", self.issuer))
            .body(mode.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// Registers Lobby's client again with exactly these redirect URIs (an
    /// app's own, known once it has started on its port).
    pub async fn allow_redirects(&self, redirect_uris: &[String]) {
        let client = serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
        });
        let res = self
            .admin
            .post(format!("{}/admin/clients", self.issuer))
            .body(client.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    pub async fn stats(&self) -> Stats {
        self.admin.get(format!("{}/admin/stats", self.issuer)).send().await.unwrap().json().await.unwrap()
    }

    /// Logs `username` in and consents, as a browser would, from the
    /// authorization URL to the redirect back to Lobby, whose URL it
    /// returns.
    pub async fn login(&self, authorization_url: &Url, username: &str) -> Url {
        self.drive(authorization_url, Some(username)).await
    }

    /// Goes to the provider and cancels there: the redirect back says
    /// `error=access_denied`.
    pub async fn deny(&self, authorization_url: &Url) -> Url {
        self.drive(authorization_url, None).await
    }

    async fn drive(&self, authorization_url: &Url, username: Option<&str>) -> Url {
        // A browser of its own: the provider's cookies tie the steps together.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut next = authorization_url.clone();
        for _ in 0..12 {
            if !next.as_str().starts_with(&self.issuer) {
                return next;
            }
            let res = if let Some(uid) = next.path().strip_prefix("/interaction/") {
                let prompt: serde_json::Value =
                    browser.get(next.clone()).send().await.unwrap().json().await.unwrap();
                let step = match (prompt["prompt"].as_str(), username) {
                    (_, None) => browser.get(format!("{}/interaction/{uid}/abort", self.issuer)),
                    (Some("login"), Some(name)) => browser
                        .post(format!("{}/interaction/{uid}/login", self.issuer))
                        .form(&[("username", name)]),
                    (Some("consent"), Some(_)) => {
                        browser.post(format!("{}/interaction/{uid}/confirm", self.issuer))
                    }
                    (other, _) => panic!("unexpected interaction {other:?}: {prompt}"),
                };
                step.send().await.unwrap()
            } else {
                browser.get(next.clone()).send().await.unwrap()
            };
            assert!(
                res.status().is_redirection(),
                "the provider answered {} at {next}: {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
            let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
            next = next.join(&location).unwrap();
        }
        panic!("the login did not come back to Lobby: {}", self.stderr.lock().unwrap());
    }
}
