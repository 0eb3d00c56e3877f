//! nginx in front of nodes, from `deploy/nginx.conf` (the configuration the
//! README tells users to run), on a port of its own.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct Nginx {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// nginx's binary, if installed.
pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A port for nginx to listen on, chosen before the nodes start (their
/// PUBLIC_URL is nginx's origin).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Nginx {
    pub async fn start(port: u16, nodes: &[SocketAddr]) -> Nginx {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let template =
            std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf"))
                .unwrap();
        let servers: String =
            nodes.iter().map(|a| format!("server {a} max_fails=1 fail_timeout=5s; ")).collect();
        let config = template
            .replace("@PREFIX@", &dir.path().display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@SERVERS@", &servers);
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(binary().expect("nginx is installed (apt-get install nginx)"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/healthz");
        let up = super::eventually(Duration::from_secs(10), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(up, "nginx answers on {base}");
        Nginx { child, base, _dir: dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers first (SIGKILL would leave
        // them running, orphaned, after the test).
        // SAFETY: kill sends a signal to our own child's process id.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
