//! Headless Chromium through ChromeDriver (WebDriver), via fantoccini. Each
//! test starts its own chromedriver on a free port; each person is a browser
//! session with its own temporary profile (so its own cookies).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, wd::Capabilities};
use serde_json::{Value, json};
use tempfile::TempDir;

pub struct Driver {
    process: Child,
    pub url: String,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let ready = crate::common::eventually(Duration::from_secs(20), || {
            let status = status.clone();
            async move { reqwest::get(&status).await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(ready, "chromedriver answers on {url}");
        Driver { process, url }
    }

    /// A new person: a browser with an empty profile of its own.
    pub async fn person(&self) -> Person {
        let profile = TempDir::new().unwrap();
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    // Background tabs keep their timers and sockets at full speed.
                    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                    "--disable-backgrounding-occluded-windows",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session");
        Person { client, driver_url: self.url.clone(), _profile: profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub struct Person {
    pub client: Client,
    driver_url: String,
    _profile: TempDir,
}

impl Person {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element's text satisfies `check`; returns the text.
    pub async fn wait_text(&self, css: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..200 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if check(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} never matched; last text: {last:?}");
    }

    pub async fn wait_url(&self, check: impl Fn(&url::Url) -> bool) -> url::Url {
        for _ in 0..200 {
            let url = self.client.current_url().await.unwrap();
            if check(&url) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never reached the expected address: {}", self.client.current_url().await.unwrap());
    }

    /// Types into a field (by its label's `for` id) the way a person does.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn register(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.fill("#register-username", username).await;
        self.fill("#register-password", password).await;
        self.click("#register button[type=submit]").await;
        self.wait_url(|u| u.path() == "/profile").await;
    }

    pub async fn screenshot(&self, name: &str, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// A Chrome DevTools command, through ChromeDriver's `goog/cdp/execute`.
    pub async fn devtools(&self, cmd: &str, params: Value) -> Value {
        let session = self.client.session_id().await.unwrap().unwrap();
        let res = reqwest::Client::new()
            .post(format!("{}/session/{session}/goog/cdp/execute", self.driver_url))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{cmd}: {}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["value"].take()
    }

    /// Makes the pages see the reader's colour scheme as `scheme` ("light" or "dark").
    pub async fn prefer_color_scheme(&self, scheme: &str) {
        self.devtools(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// The titles of this browser's open tabs, hidden ones included.
    pub async fn tab_titles(&self) -> Vec<String> {
        let targets = self.devtools("Target.getTargets", json!({})).await;
        targets["targetInfos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "page")
            .map(|t| t["title"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Runs axe-core (from npm, in `tests/browser/node_modules`) on the page
    /// and fails on any serious or critical violation.
    pub async fn assert_accessible(&self, page: &str) {
        let axe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/browser/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
            panic!("{}: {e}; install it with `npm ci --prefix tests/browser`", axe.display())
        });
        self.client.execute(&source, vec![]).await.unwrap();
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                   .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)));",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<String> = serde_json::from_value(violations).unwrap();
        assert!(violations.is_empty(), "axe-core on {page}:\n{}", violations.join("\n"));
    }

    /// The browser's console entries since the last call (ChromeDriver's log endpoint).
    pub async fn console(&self) -> Vec<(String, String)> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let res = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or("").to_owned(),
                            e["message"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails on any console error or warning (the pages should log nothing),
    /// except Chrome's network line for a status the test itself expected
    /// (a failed login is a 401 page by contract).
    pub async fn assert_clean_console(&self, expected_statuses: &[u16]) {
        let expected = |message: &str| {
            expected_statuses.iter().any(|s| {
                message.ends_with(&format!("the server responded with a status of {s} ({})", reason(*s)))
            })
        };
        let problems: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, message)| level != "INFO" && level != "DEBUG" && !expected(message))
            .collect();
        assert!(problems.is_empty(), "browser console: {problems:?}");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}
