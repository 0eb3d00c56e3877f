//! The real `lobby` binary as a child process, for what only a process of
//! its own can show: a low open-file limit, for one.

use std::{
    net::SocketAddr,
    process::{Child, Command},
    time::Duration,
};

use super::{TestDb, eventually};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub base: String,
    /// The working directory (so no `.env` of the checkout is read).
    _scratch: tempfile::TempDir,
}

impl Server {
    /// Starts `lobby` on `db`, with `env` on top of the test settings and at
    /// most `open_files` file descriptors (soft and hard, so the server
    /// cannot raise it); returns once `/healthz` answers.
    pub async fn start(db: &TestDb, env: &[(&str, &str)], open_files: Option<u64>) -> Server {
        let scratch = tempfile::TempDir::new().unwrap();
        let port = super::nginx::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(env!("CARGO_BIN_EXE_lobby"));
        command
            .env("DATABASE_URL", db.url())
            .env("STORAGE_URL", format!("file://{}", db.files_dir().display()))
            .env("LISTEN_ADDR", addr.to_string())
            .env("ARGON2_MEMORY_KIB", "1024")
            .env("RUST_LOG", "error")
            .envs(env.iter().copied())
            .current_dir(scratch.path());
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only setrlimit runs, a plain
            // system call that allocates nothing and takes no lock.
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        let child = command.spawn().expect("lobby starts");
        let base = format!("http://{addr}");
        let server = Server { child, addr, base, _scratch: scratch };
        let health = format!("{}/healthz", server.base);
        let up = eventually(Duration::from_secs(20), || async {
            reqwest::get(&health).await.is_ok_and(|r| r.status().is_success())
        });
        assert!(up.await, "lobby answers /healthz");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process's resident memory now, in KiB (Linux's `VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
