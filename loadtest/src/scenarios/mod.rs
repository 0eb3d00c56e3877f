//! The scenarios. Each returns its figures as one JSON object and prints a
//! readable summary on stderr.
//!
//! - [`idle`]: memory per held connection (optionally over several processes).
//! - [`counts`]: storm, churn and failover, where the count must come out exact.
//! - [`fanout`]: delivery rate, latency and loss (and logins, or typing, during a fanout).
//! - [`http`]: authenticated page views, and scrollback pages, per second.
//! - [`rooms`]: a small room's messages next to the lobby's; greeting a user in many rooms.
//! - [`search`]: search latency over a large chat, and what its index costs a commit.
//! - [`uploads`]: the server's memory while large uploads run at once.

mod counts;
mod fanout;
mod http;
mod idle;
mod rooms;
mod search;
mod uploads;

use counts::{churn, failover, storm};
use fanout::{Midway, fanout};
use http::{http, scrollback};
use idle::{hold, idle};
use rooms::{greeting, private_room, rooms};
use search::search;
use uploads::uploads;

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
        // Registering thousands of accounts is not what these measure: cheap hashing.
        _ => {
            let cheap = matches!(
                cli.scenario,
                Scenario::Rooms { .. }
                    | Scenario::Greeting { .. }
                    | Scenario::Search { .. }
                    | Scenario::Uploads { .. }
            );
            let cheap = cheap || matches!(cli.scenario, Scenario::Idle { rooms, .. } if rooms > 0);
            Server::start(&cli.server_bin, cli.nodes, cheap).await?
        }
    };
    match cli.scenario.clone() {
        Scenario::Idle { n, history, burst, rooms } => idle(cli, &server, n, history, burst, rooms).await,
        Scenario::Storm { n } => storm(cli, &server, n).await,
        Scenario::Fanout { n, rate, secs } => fanout(cli, &server, n, rate, secs, Midway::Nothing).await,
        Scenario::Churn { n, rounds } => churn(cli, &server, n, rounds).await,
        Scenario::Logins { n, receivers, rate, secs } => {
            fanout(cli, &server, receivers, rate, secs, Midway::Logins(n)).await
        }
        Scenario::Typing { n, rate, secs } => fanout(cli, &server, n, rate, secs, Midway::Typing).await,
        Scenario::Scrollback { secs, conns, messages } => {
            scrollback(cli, &server, secs, conns, messages).await
        }
        Scenario::Http { secs, conns } => http(cli, &server, secs, conns).await,
        Scenario::Failover { n } => failover(cli, &mut server, n).await,
        Scenario::Rooms { n, size, rate, secs } => rooms(cli, &server, n, size, rate, secs).await,
        Scenario::Greeting { rooms, connects } => greeting(&server, rooms, connects).await,
        Scenario::Search { messages, rooms, member_of, queries, commits } => {
            search(cli, &mut server, (messages, rooms, member_of), queries, commits).await
        }
        Scenario::Uploads { n, size } => uploads(&server, n, &size).await,
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

/// Posts `count` messages of 150 characters and waits until the last one is back.
async fn post_history(base: &str, cookie: &str, count: usize) -> Result<(), String> {
    if count == 0 {
        return Ok(());
    }
    let mut ws = client::open(base, cookie, "", Sources(0), 0).await?;
    let text = "x".repeat(150);
    for _ in 0..count {
        let frame = json!({"event": "chat message", "data": text}).to_string();
        ws.send(Message::text(frame)).await.map_err(|e| e.to_string())?;
    }
    let mut seen = 0;
    while seen < count {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"event":"chat message""#) => seen += 1,
            Some(Ok(_)) => {}
            _ => return Err("the history poster's socket closed".into()),
        }
    }
    Ok(())
}
