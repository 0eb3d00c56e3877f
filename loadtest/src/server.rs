//! The server under test: one node on a fresh SQLite file, N nodes on a
//! throwaway PostgreSQL (both started from the release binary), or nodes
//! already running, given by URL and PID.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// One node or several; connections are dealt over `nodes` round-robin.
pub struct Server {
    pub nodes: Vec<Node>,
    /// How the nodes were started, to start them again (`None` for nodes given by URL).
    started: Option<Started>,
    /// Dropped after the nodes (field order), so they never outlive their database.
    _postgres: Option<Postgres>,
    _dir: Option<tempfile::TempDir>,
}

struct Started {
    bin: PathBuf,
    database: String,
    dir: PathBuf,
    cheap_hashing: bool,
}

pub struct Node {
    pub base: String,
    pub pid: u32,
    child: Option<Child>,
}

/// Settings every node under test gets: limits raised so a few sender
/// connections can drive any rate, 50 users can hold any number of tabs,
/// and one client address may register and log in as often as it likes,
/// with as many handshakes and logins in flight at once as it likes.
const LIMITS: [(&str, &str); 6] = [
    ("CHAT_BURST", "1000000"),
    ("CHAT_RATE", "1000000"),
    ("MAX_SOCKETS_PER_USER", "1000000"),
    ("AUTH_ATTEMPTS_PER_MINUTE", "1000000"),
    ("MAX_PENDING_PER_CLIENT", "0"),
    ("UPLOADS_PER_HOUR", "1000000"),
];

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

impl Server {
    /// `nodes == 0`: one server on SQLite (the default deployment). `nodes >= 1`:
    /// that many nodes on a throwaway PostgreSQL cluster.
    /// `cheap_hashing`: argon2 at its smallest, for scenarios that register
    /// thousands of accounts to measure something else.
    pub async fn start(bin: &Path, nodes: usize, cheap_hashing: bool) -> Result<Server, String> {
        let dir = tempfile::TempDir::new().map_err(|e| e.to_string())?;
        let bin = std::fs::canonicalize(bin)
            .map_err(|e| format!("{}: {e} (cargo build --release first)", bin.display()))?;
        let (database, postgres) = if nodes == 0 {
            (format!("sqlite://{}", dir.path().join("load.db").display()), None)
        } else {
            let postgres = Postgres::start(dir.path())?;
            (postgres.url.clone(), Some(postgres))
        };
        let mut started = Vec::new();
        for _ in 0..nodes.max(1) {
            started.push(Node::start(&bin, &database, dir.path(), cheap_hashing)?);
        }
        let how = Started { bin, database, dir: dir.path().to_owned(), cheap_hashing };
        let server = Server { nodes: started, started: Some(how), _postgres: postgres, _dir: Some(dir) };
        for node in &server.nodes {
            node.wait_healthy().await?;
        }
        Ok(server)
    }

    /// Running nodes: comma-separated URLs and their PIDs (for memory).
    pub async fn attach(urls: &str, pids: &str) -> Result<Server, String> {
        let pids: Vec<u32> = pids
            .split(',')
            .map(|p| p.trim().parse().map_err(|_| format!("bad --pid {p}")))
            .collect::<Result<_, _>>()?;
        let urls: Vec<&str> = urls.split(',').collect();
        if urls.len() != pids.len() {
            return Err("--url and --pid need as many entries each".into());
        }
        let nodes = urls
            .iter()
            .zip(pids)
            .map(|(url, pid)| Node { base: url.trim().trim_end_matches('/').to_owned(), pid, child: None })
            .collect();
        let server = Server { nodes, started: None, _postgres: None, _dir: None };
        for node in &server.nodes {
            node.wait_healthy().await?;
        }
        Ok(server)
    }

    /// The first node (accounts are made through it; every node serves them).
    pub fn base(&self) -> &str {
        &self.nodes[0].base
    }

    pub fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    /// `--url` and `--pid` values naming these nodes, for a child process.
    pub fn urls_and_pids(&self) -> (String, String) {
        let urls: Vec<&str> = self.nodes.iter().map(|n| n.base.as_str()).collect();
        let pids: Vec<String> = self.nodes.iter().map(|n| n.pid.to_string()).collect();
        (urls.join(","), pids.join(","))
    }

    /// Resident memory of every node together, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        self.nodes.iter().map(|n| rss_kib(n.pid)).sum()
    }

    /// CPU time (user + system) every node has used so far, in seconds (from /proc).
    pub fn cpu_secs(&self) -> f64 {
        self.nodes.iter().map(|n| cpu_secs(n.pid)).sum()
    }

    /// The database the nodes this tool started use (a `sqlite://` or `postgres://` URL).
    pub fn database_url(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.database.as_str())
    }

    /// Stops every node this tool started (SIGTERM: a clean shutdown), keeping their database.
    pub fn stop(&mut self) -> Result<(), String> {
        for node in &mut self.nodes {
            let child = node.child.as_mut().ok_or("only nodes this tool started can be stopped")?;
            // SAFETY: a signal to our own child, which has not been waited for yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            child.wait().map_err(|e| e.to_string())?;
            node.child = None;
        }
        self.nodes.clear();
        Ok(())
    }

    /// Starts as many nodes as before on the same database (after [`Server::stop`]).
    pub async fn start_again(&mut self, nodes: usize) -> Result<(), String> {
        let how = self.started.as_ref().ok_or("only nodes this tool started can be started again")?;
        for _ in 0..nodes.max(1) {
            self.nodes.push(Node::start(&how.bin, &how.database, &how.dir, how.cheap_hashing)?);
        }
        for node in &self.nodes {
            node.wait_healthy().await?;
        }
        Ok(())
    }

    /// SIGKILL to node `i` (one this tool started).
    pub fn kill(&mut self, i: usize) -> Result<(), String> {
        let child = self.nodes[i].child.as_mut().ok_or("only nodes this tool started can be killed")?;
        child.kill().map_err(|e| e.to_string())?;
        let _ = child.wait();
        Ok(())
    }
}

impl Node {
    fn start(bin: &Path, database: &str, dir: &Path, cheap_hashing: bool) -> Result<Node, String> {
        let port = free_port()?;
        let mut command = Command::new(bin);
        command
            .env("DATABASE_URL", database)
            // One folder for every node's files (PostgreSQL has no default store).
            .env("STORAGE_URL", format!("file://{}", dir.join("uploads").display()))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "lobby=warn")
            .envs(LIMITS)
            .envs(
                cheap_hashing
                    .then_some([("ARGON2_MEMORY_KIB", "64"), ("ARGON2_ITERATIONS", "1")])
                    .into_iter()
                    .flatten(),
            )
            .current_dir(dir)
            .stdin(Stdio::null())
            // The server logs to stderr, which joins ours; our stdout carries
            // only the JSON figures.
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // Settings for the server under test pass through as LOBBY_SERVER_<NAME>.
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("LOBBY_SERVER_") {
                command.env(name, v);
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("could not start {}: {e} (cargo build --release first)", bin.display()))?;
        Ok(Node { base: format!("http://127.0.0.1:{port}"), pid: child.id(), child: Some(child) })
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
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time (user + system) this process has used so far, in seconds.
pub fn own_cpu_secs() -> f64 {
    cpu_secs(std::process::id())
}

/// utime + stime of a process: fields 14 and 15 of /proc/PID/stat, after
/// the command name (which may hold spaces, so counted from its closing paren).
fn cpu_secs(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    });
    // SAFETY: sysconf reads a constant of the system; nothing is passed.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks.unwrap_or(0) as f64 / per_sec as f64
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A throwaway PostgreSQL cluster (`deploy/postgres.sh`), stopped on drop.
struct Postgres {
    data: PathBuf,
    url: String,
}

fn postgres_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres.sh")
}

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres, String> {
        // As root the cluster belongs to the postgres user, who must reach it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let data = dir.join("pg");
        let out = Command::new("bash")
            .arg(postgres_script())
            .arg("start")
            .arg(&data)
            .arg(free_port()?.to_string())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("could not start PostgreSQL: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(Postgres { data, url })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(postgres_script()).arg("stop").arg(&self.data).output();
    }
}
