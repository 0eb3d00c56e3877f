//! A real S3-protocol server for the tests: moto's `moto_server` (PyPI's
//! `moto[server]`, the version `.ci/run` pins), started on a free port by the
//! test and stopped when dropped. `LOBBY_TEST_MOTO` names the program if it
//! is not on the PATH. Tests that use it are `#[ignore]`d; asked for (with
//! `--include-ignored`, as `.ci/run` does) without it, they fail, never pass.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::eventually;
use lobby::Config;

pub const MOTO_ENV: &str = "LOBBY_TEST_MOTO";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server and waits until it answers.
    pub async fn start() -> S3Server {
        let program = std::env::var(MOTO_ENV).unwrap_or_else(|_| "moto_server".to_owned());
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs an S3-protocol server: `{program}` could not be started ({e}). \
                     pip install 'moto[server]==5.2.1' (as .ci/run does), or set {MOTO_ENV}"
                )
            });
        let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let up = eventually(Duration::from_secs(30), || async {
            client.get(format!("{}/moto-api/", server.endpoint)).send().await.is_ok()
        })
        .await;
        assert!(up, "moto_server answers on {}", server.endpoint);
        server
    }

    /// Makes a bucket (moto takes unsigned requests).
    pub async fn bucket(&self, name: &str) {
        let res = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(res.status().is_success(), "bucket {name}: {}", res.status());
    }

    /// Settings for a node that keeps its files in `bucket` (under `prefix`).
    pub fn configure(&self, config: &mut Config, bucket: &str) {
        config.files.storage_url = Some(format!("s3://{bucket}/lobby"));
        config.files.s3_endpoint = Some(self.endpoint.clone());
        config.files.s3_region = "us-east-1".to_owned();
        config.files.s3_access_key_id = Some("testing".to_owned());
        config.files.s3_secret_access_key = Some("testing".parse().unwrap());
    }

    /// The keys of every object in the bucket.
    pub async fn objects(&self, bucket: &str) -> Vec<String> {
        let xml = self.get(&format!("/{bucket}?list-type=2")).await;
        tags(&xml, "Key")
    }

    /// How many multipart uploads were begun and neither completed nor aborted.
    pub async fn unfinished_uploads(&self, bucket: &str) -> usize {
        tags(&self.get(&format!("/{bucket}?uploads")).await, "UploadId").len()
    }

    async fn get(&self, path: &str) -> String {
        let res = reqwest::Client::new().get(format!("{}{path}", self.endpoint)).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.text().await.unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every `<tag>…</tag>` in an XML answer (enough for S3's lists).
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open).skip(1).filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_owned())).collect()
}
