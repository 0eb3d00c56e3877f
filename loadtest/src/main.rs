//! lobby-load: measures a Lobby server through its real contract.
//!
//! Each scenario prints a readable summary on stderr and one JSON line of
//! figures on stdout. By default the server is started from the release
//! binary on a fresh SQLite file (with the chat rate limit raised, so a few
//! sender connections can drive any rate); `--nodes N` starts N nodes on a
//! throwaway PostgreSQL instead, and deals connections over them; `--url`
//! and `--pid` aim at running nodes.

mod client;
mod fleet;
mod reader;
mod scenarios;
mod server;
mod stats;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "lobby-load", about = "Load generator and benchmark for Lobby")]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Running nodes to measure (comma-separated; with --pid for their memory), instead of starting one.
    #[arg(long, global = true)]
    pub url: Option<String>,
    #[arg(long, global = true)]
    pub pid: Option<String>,
    /// Start this many nodes on a throwaway PostgreSQL (0: one server on SQLite).
    #[arg(long, global = true, default_value_t = 0)]
    pub nodes: usize,
    /// Sender connections in fanout (0: one per message per second, at most 4).
    #[arg(long, global = true, default_value_t = 0)]
    pub senders: usize,
    /// The server binary to start.
    #[arg(long, global = true, default_value = "target/release/lobby")]
    pub server_bin: PathBuf,
    /// Accounts to spread the sockets over (each has several tabs).
    #[arg(long, global = true, default_value_t = 50)]
    pub users: usize,
    /// Spread client sockets over 127.0.0.2, .3, … (this many addresses; 0 = 127.0.0.1 only).
    #[arg(long, global = true, default_value_t = 0)]
    pub source_addrs: u8,
    /// WebSocket handshakes in flight at once.
    #[arg(long, global = true, default_value_t = 512)]
    pub parallel: usize,
    /// Client processes to hold the sockets (idle): each process may open only
    /// as many files as the machine's per-process limit.
    #[arg(long, global = true, default_value_t = 1)]
    pub procs: usize,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Hold N idle authenticated connections: server RSS per connection, counts exact.
    Idle {
        n: usize,
        /// Chat messages (150 characters each) posted first, so every socket is sent a
        /// history (the last 50) as it opens, as in real use.
        #[arg(long, default_value_t = 0)]
        history: usize,
        /// Then this many messages at once to every socket, and RSS measured again once
        /// idle: what a socket keeps after writing a backlog.
        #[arg(long, default_value_t = 0)]
        burst: usize,
        /// Every user in this many private rooms besides the lobby.
        #[arg(long, default_value_t = 0)]
        rooms: usize,
    },
    /// Open N as fast as possible: time to the true count, count frames per connection.
    Storm { n: usize },
    /// N receivers, RATE messages per second for SECS: deliveries/s, latency, loss.
    Fanout { n: usize, rate: f64, secs: f64 },
    /// Hold N, and ROUNDS times drop 10% abruptly and reopen as many: counts exact at the end.
    Churn { n: usize, rounds: usize },
    /// N concurrent logins in the middle of a fanout (RECEIVERS, RATE, SECS): the fanout's p99 during them.
    Logins { n: usize, receivers: usize, rate: f64, secs: f64 },
    /// N receivers all typing through the second half of a fanout (RATE, SECS): `typing`
    /// frames per socket per second, and the fanout's p99 before and during.
    Typing { n: usize, rate: f64, secs: f64 },
    /// GET /api/messages?before=… (random pages of the chat) for SECS over CONNS
    /// keep-alive connections: requests per second and latency.
    Scrollback {
        secs: f64,
        conns: usize,
        /// Messages in the chat, posted first.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
    },
    /// Authenticated GET /profile for SECS over CONNS keep-alive connections: requests per second.
    Http { secs: f64, conns: usize },
    /// Hold N over the nodes (needs --nodes 2 or more), kill the last node: how long
    /// until every surviving socket shows the true count.
    Failover { n: usize },
    /// N sockets (one user each) in private rooms of SIZE, RATE messages a
    /// second to the rooms for SECS; then the same messages as a lobby fan-out to
    /// SIZE sockets alone: server CPU per delivered frame of each, side by side.
    Rooms { n: usize, size: usize, rate: f64, secs: f64 },
    /// One user in ROOMS rooms connects CONNECTS times: the greeting's time and
    /// server CPU (ROOMS 0 also works against a server without rooms).
    Greeting { rooms: usize, connects: usize },
    /// MESSAGES messages in ROOMS rooms written straight into the database, then
    /// GET /api/search (one word, two words, a prefix, a phrase) from a user in
    /// --member-of of them, one at a time: p50 and p99 per kind; then commits
    /// with the index and without it. On PostgreSQL with --nodes 1.
    Search {
        messages: usize,
        rooms: usize,
        #[arg(long, default_value_t = 50)]
        member_of: usize,
        /// Queries of each kind.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Messages committed one at a time, then five times as many at once (five
        /// rounds, the median rate), with the index and without.
        #[arg(long, default_value_t = 400)]
        commits: usize,
    },
    /// N uploads of SIZE (10MiB, 512KiB, bytes) at once, streamed: the server's RSS rise.
    Uploads { n: usize, size: String },
    /// (internal) One client process of a multi-process `idle`.
    #[command(hide = true)]
    Hold { conns: usize, total: usize, offset: usize, cookies: PathBuf },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // The tool holds thousands of sockets too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match scenarios::run(&cli).await {
        Ok(figures) => {
            println!("{figures}");
            // A benchmark that finds a wrong count or a lost message has found a bug.
            let fanout = figures.get("fanout").unwrap_or(&figures);
            if figures["counts_exact"] == false || fanout["lost"].as_u64().is_some_and(|lost| lost > 0) {
                eprintln!("lobby-load: FAILED: a count was wrong or a message was lost");
                std::process::exit(2);
            }
        }
        Err(e) => {
            eprintln!("lobby-load: {e}");
            std::process::exit(1);
        }
    }
}
