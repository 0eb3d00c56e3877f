//! The scenarios. Each returns its figures as one JSON object and prints a
//! readable summary on stderr.
//!
//! - [`idle`]: memory per held connection (optionally over several processes).
//! - [`counts`]: storm, churn and failover, where the count must come out exact.
//! - [`fanout`]: delivery rate, latency and loss (and logins during a fanout).
//! - [`http`]: authenticated page views per second.

mod counts;
mod fanout;
mod http;
mod idle;

use counts::{churn, failover, storm};
use fanout::fanout;
use http::http;
use idle::{hold, idle};

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Cli, Scenario,
    client::{self, Sources},
    fleet::Fleet,
    reader::{self, Latencies},
    server::Server,
    stats::{ms, percentile},
};

pub async fn run(cli: &Cli) -> Result<Value, String> {
    if let Scenario::Hold { conns, total, offset, cookies } = &cli.scenario {
        return hold(cli, *conns, *total, *offset, cookies).await;
    }
    let mut server = match (&cli.url, &cli.pid) {
        (Some(url), Some(pid)) => Server::attach(url, pid).await?,
        (Some(_), None) => return Err("--url needs --pid (to read the server's memory)".into()),
        _ => Server::start(&cli.server_bin, cli.nodes).await?,
    };
    match cli.scenario.clone() {
        Scenario::Idle { n, history } => idle(cli, &server, n, history).await,
        Scenario::Storm { n } => storm(cli, &server, n).await,
        Scenario::Fanout { n, rate, secs } => fanout(cli, &server, n, rate, secs, None).await,
        Scenario::Churn { n, rounds } => churn(cli, &server, n, rounds).await,
        Scenario::Logins { n, receivers, rate, secs } => {
            fanout(cli, &server, receivers, rate, secs, Some(n)).await
        }
        Scenario::Http { secs, conns } => http(cli, &server, secs, conns).await,
        Scenario::Failover { n } => failover(cli, &mut server, n).await,
        Scenario::Hold { .. } => unreachable!("handled above"),
    }
}

fn fleet(cli: &Cli, server: &Server, cookies: Vec<String>, target: u64) -> Fleet {
    Fleet::new(server.bases(), cookies, Sources(cli.source_addrs), cli.parallel, target)
}

/// Lets freed memory settle before reading RSS.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}
