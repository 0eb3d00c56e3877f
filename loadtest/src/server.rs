//! The server under test: started from the release binary on a fresh
//! database, or an already running one given by URL and PID.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct Server {
    pub base: String,
    pub pid: u32,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `bin` on a free port with a fresh SQLite file. The chat rate
    /// limit is raised so a few sender connections can drive any rate.
    pub async fn start(bin: &Path, env: &[(String, String)]) -> Result<Server, String> {
        let dir = tempfile::TempDir::new().map_err(|e| e.to_string())?;
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let bin = std::fs::canonicalize(bin)
            .map_err(|e| format!("{}: {e} (cargo build --release first)", bin.display()))?;
        let mut command = Command::new(&bin);
        command
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("load.db").display()))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "lobby=warn")
            .env("CHAT_BURST", "1000000")
            .env("CHAT_RATE", "1000000")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            // The server logs to stderr, which joins ours; our stdout carries
            // only the JSON figures.
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        // Settings for the server under test pass through as LOBBY_SERVER_<NAME>.
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("LOBBY_SERVER_") {
                command.env(name, v);
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("could not start {}: {e} (cargo build --release first)", bin.display()))?;
        let server = Server {
            base: format!("http://127.0.0.1:{port}"),
            pid: child.id(),
            child: Some(child),
            _dir: Some(dir),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    pub async fn attach(url: &str, pid: u32) -> Result<Server, String> {
        let server = Server { base: url.trim_end_matches('/').to_owned(), pid, child: None, _dir: None };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> Result<(), String> {
        let url = format!("{}/healthz", self.base);
        for _ in 0..300 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{url} did not answer 200 within 15 s"))
    }

    /// Resident memory of the server process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
