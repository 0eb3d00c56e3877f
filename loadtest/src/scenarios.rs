//! The scenarios. Each returns its figures as one JSON object and prints a
//! readable summary on stderr.

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
    let server = match (&cli.url, cli.pid) {
        (Some(url), Some(pid)) => Server::attach(url, pid).await?,
        (Some(_), None) => return Err("--url needs --pid (to read the server's memory)".into()),
        _ => Server::start(&cli.server_bin, &[]).await?,
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
        Scenario::Hold { .. } => unreachable!("handled above"),
    }
}

fn fleet(cli: &Cli, server: &Server, cookies: Vec<String>, target: u64) -> Fleet {
    Fleet::new(&server.base, cookies, Sources(cli.source_addrs), cli.parallel, target)
}

/// Lets freed memory settle before reading RSS.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

async fn idle(cli: &Cli, server: &Server, n: usize, history: usize) -> Result<Value, String> {
    let cookies = client::accounts(&server.base, cli.users.min(n).max(1)).await?;
    post_history(&server.base, &cookies[0], history).await?;
    settle().await;
    let rss_before = server.rss_kib();
    let started = Instant::now();
    let exact = if cli.procs <= 1 {
        let mut fleet = fleet(cli, server, cookies, n as u64);
        fleet.open(n).await?;
        let reached = fleet.wait_all_at(n as u64, Duration::from_secs(60)).await.is_some();
        settle().await;
        let rss_after = server.rss_kib();
        let exact = reached && fleet.all_at(n as u64);
        fleet.finish().await;
        (exact, rss_after)
    } else {
        idle_in_processes(cli, server, n, &cookies).await?
    };
    let (exact, rss_after) = exact;
    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    eprintln!(
        "idle {n}: server RSS {rss_before} KiB -> {rss_after} KiB, {per_conn:.2} KiB per connection; every count exact: {exact} (opened in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(json!({"scenario": "idle", "n": n, "rss_before_kib": rss_before, "rss_after_kib": rss_after,
              "kib_per_conn": per_conn, "counts_exact": exact, "procs": cli.procs.max(1), "history": history}))
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

/// `idle` over several client processes: each holds its share, says when all
/// its sockets see the total, and holds on until told to let go.
async fn idle_in_processes(
    cli: &Cli,
    server: &Server,
    n: usize,
    cookies: &[String],
) -> Result<(bool, u64), String> {
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), cookies.join("\n")).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let share = n.div_ceil(cli.procs);
    let mut children = Vec::new();
    for p in 0..cli.procs {
        let conns = share.min(n - (p * share).min(n));
        let child = Command::new(&exe)
            .args(["--url", &server.base, "--pid", &server.pid.to_string()])
            .args(["--source-addrs", &cli.source_addrs.to_string(), "--parallel", &cli.parallel.to_string()])
            .args(["hold", &conns.to_string(), &n.to_string(), &(p * share).to_string()])
            .arg(file.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        children.push(child);
    }
    let mut readers = Vec::new();
    for child in &mut children {
        let stdout = child.stdout.take().ok_or("no stdout")?;
        readers.push(BufReader::new(stdout));
    }
    // Each child's first line: all its sockets saw the total.
    let mut ready = true;
    for reader in &mut readers {
        let mut line = String::new();
        tokio::task::block_in_place(|| reader.read_line(&mut line)).map_err(|e| e.to_string())?;
        ready &= serde_json::from_str::<Value>(&line).is_ok_and(|v| v["exact"] == true);
    }
    settle().await;
    let rss_after = server.rss_kib();
    // Every child checks its counts before any lets go (a child that let go
    // first would change the others' counts); then closing stdin lets go.
    let mut exact = ready;
    for child in &mut children {
        let stdin = child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "check").map_err(|e| e.to_string())?;
    }
    for reader in &mut readers {
        let mut line = String::new();
        tokio::task::block_in_place(|| reader.read_line(&mut line)).map_err(|e| e.to_string())?;
        exact &= serde_json::from_str::<Value>(&line).is_ok_and(|v| v["exact"] == true);
    }
    for child in &mut children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    Ok((exact, rss_after))
}

/// The child side of `idle_in_processes`.
async fn hold(
    cli: &Cli,
    conns: usize,
    total: usize,
    offset: usize,
    cookies: &std::path::Path,
) -> Result<Value, String> {
    let base = cli.url.clone().ok_or("hold needs --url")?;
    let cookies: Vec<String> =
        std::fs::read_to_string(cookies).map_err(|e| e.to_string())?.lines().map(str::to_owned).collect();
    // Keep each process's users distinct from the others' by rotating the list.
    let mut rotated = cookies.clone();
    rotated.rotate_left(offset % cookies.len().max(1));
    let mut fleet = Fleet::new(&base, rotated, Sources(cli.source_addrs), cli.parallel, total as u64);
    fleet.open(conns).await?;
    let reached = fleet.wait_all_at(total as u64, Duration::from_secs(120)).await.is_some();
    println!("{}", json!({"exact": reached}));
    let _ = std::io::stdout().flush();
    // "check" from the parent: are the counts still exact? Then hold until
    // the parent closes our stdin.
    let (checked, check) = tokio::sync::oneshot::channel();
    let released = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::stdin().lines();
        let _ = lines.next();
        let _ = checked.send(());
        lines.count()
    });
    let _ = check.await;
    let exact = fleet.all_at(total as u64);
    println!("{}", json!({"exact": exact}));
    let _ = std::io::stdout().flush();
    let _ = released.await;
    fleet.finish().await;
    Ok(json!({"exact": exact, "released": true}))
}

async fn storm(cli: &Cli, server: &Server, n: usize) -> Result<Value, String> {
    let cookies = client::accounts(&server.base, cli.users.min(n).max(1)).await?;
    let mut fleet = fleet(cli, server, cookies, n as u64);
    fleet.open(n).await?;
    let last_connect = fleet.start.elapsed();
    let within = fleet.wait_all_at(n as u64, Duration::from_secs(30)).await;
    let reached_at =
        fleet.seen.iter().map(|s| s.reached_target_ms.load(Ordering::Relaxed)).max().unwrap_or(0);
    let true_after_last_ms = (reached_at as f64 - last_connect.as_secs_f64() * 1000.0).max(0.0);
    let frames: Vec<u32> = fleet.seen.iter().map(|s| s.count_frames.load(Ordering::Relaxed)).collect();
    let mean_frames = frames.iter().map(|f| f64::from(*f)).sum::<f64>() / n as f64;
    let max_frames = frames.iter().copied().max().unwrap_or(0);
    let exact = within.is_some();
    eprintln!(
        "storm {n}: all open after {:.0} ms; every socket had the true count {true_after_last_ms:.0} ms after the last connect (exact: {exact}); count frames per connection: mean {mean_frames:.1}, max {max_frames}",
        last_connect.as_secs_f64() * 1000.0
    );
    fleet.finish().await;
    Ok(json!({"scenario": "storm", "n": n, "open_ms": last_connect.as_millis() as u64,
              "true_after_last_connect_ms": true_after_last_ms, "counts_exact": exact,
              "count_frames_mean": mean_frames, "count_frames_max": max_frames}))
}

/// A sender: its own socket, sending stamped messages at `rate` per second,
/// and reading everything that comes back (as any client must).
async fn sender(
    base: String,
    cookie: String,
    index: usize,
    senders: usize,
    rate: f64,
    until: Instant,
    sent: Arc<AtomicU64>,
) -> Result<u64, String> {
    let ws = client::open(&base, &cookie, "", Sources(0), 0).await?;
    let (mut out, mut incoming) = ws.split();
    let errors = tokio::spawn(async move {
        let mut errors = 0u64;
        while let Some(Ok(frame)) = incoming.next().await {
            if let Message::Text(t) = frame
                && t.as_str().starts_with(r#"{"event":"error""#)
            {
                errors += 1;
            }
        }
        errors
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(senders as f64 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut k = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        let seq = k * senders as u64 + index as u64;
        let frame =
            json!({"event": "chat message", "data": format!("{seq}:{}", reader::now_nanos())}).to_string();
        out.send(Message::text(frame)).await.map_err(|e| e.to_string())?;
        sent.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
    // Stay a while so our socket keeps reading what comes back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    errors.abort();
    Ok(k)
}

async fn fanout(
    cli: &Cli,
    server: &Server,
    n: usize,
    rate: f64,
    secs: f64,
    logins: Option<usize>,
) -> Result<Value, String> {
    let senders = rate.ceil().clamp(1.0, 4.0) as usize;
    let cookies = client::accounts(&server.base, cli.users.max(senders + 1)).await?;
    let (sender_cookies, receiver_cookies) = cookies.split_at(senders);
    let total = (n + senders) as u64;
    let mut receivers = fleet(cli, server, receiver_cookies.to_vec(), total);
    receivers.open(n).await?;

    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut sending = Vec::new();
    for (i, cookie) in sender_cookies.iter().enumerate() {
        sending.push(tokio::spawn(sender(
            server.base.clone(),
            cookie.clone(),
            i,
            senders,
            rate,
            until,
            sent.clone(),
        )));
    }
    if receivers.wait_all_at(total, Duration::from_secs(30)).await.is_none() {
        return Err(format!("not every receiver saw {total} connections"));
    }

    // The login burst, half way through.
    let login_window = match logins {
        Some(count) => {
            tokio::time::sleep_until(started + Duration::from_secs_f64(secs / 2.0)).await;
            let from = reader::now_nanos();
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..count)
                .map(|i| {
                    let base = server.base.clone();
                    let user = format!("load{}", senders + i % receiver_cookies.len());
                    tokio::spawn(async move { client::login(&base, &user).await })
                })
                .collect();
            let mut ok = 0;
            for task in tasks {
                ok += usize::from(matches!(task.await, Ok(Ok(_))));
            }
            Some((from, reader::now_nanos(), ok, t0.elapsed()))
        }
        None => None,
    };

    for task in sending {
        task.await.map_err(|e| e.to_string())??;
    }
    let sent = sent.load(Ordering::Relaxed);
    // Wait for the last deliveries (or give up on them: they are lost).
    let expected = sent * n as u64;
    let delivered = || receivers.seen.iter().map(|s| s.chat.load(Ordering::Relaxed)).sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(5);
    while delivered() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_total = delivered();
    let errors: u64 = receivers.seen.iter().map(|s| s.errors.load(Ordering::Relaxed)).sum();
    let latencies: Vec<Latencies> = receivers.finish().await;
    let mut all: Vec<u32> = latencies.iter().flatten().map(|(_, l)| *l).collect();
    all.sort_unstable();
    let lost = expected.saturating_sub(delivered_total);
    let per_sec = delivered_total as f64 / secs;
    let (p50, p99, max) = (percentile(&all, 50.0), percentile(&all, 99.0), all.last().copied().unwrap_or(0));
    eprintln!(
        "fanout {n} x {rate}/s for {secs}s: {sent} messages, {delivered_total} deliveries ({per_sec:.0}/s), lost {lost}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(p50),
        ms(p99),
        ms(max)
    );
    let mut figures = json!({"scenario": "fanout", "n": n, "rate": rate, "secs": secs, "messages": sent,
        "deliveries": delivered_total, "deliveries_per_sec": per_sec, "lost": lost, "errors": errors,
        "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max)});
    if let Some((from, to, ok, took)) = login_window {
        let (from_ms, to_ms) = ((from / 1_000_000) as u64, (to / 1_000_000) as u64);
        let mut before: Vec<u32> =
            latencies.iter().flatten().filter(|(s, _)| *s < from_ms).map(|(_, l)| *l).collect();
        let mut during: Vec<u32> = latencies
            .iter()
            .flatten()
            .filter(|(s, _)| *s >= from_ms && *s <= to_ms)
            .map(|(_, l)| *l)
            .collect();
        before.sort_unstable();
        during.sort_unstable();
        let (p99_before, p99_during) = (percentile(&before, 99.0), percentile(&during, 99.0));
        let logins_per_sec = ok as f64 / took.as_secs_f64();
        let n = logins.unwrap_or(0);
        eprintln!(
            "logins {n}: {ok} ok in {:.2} s ({logins_per_sec:.0}/s); fanout p99 before {:.1} ms, during {:.1} ms",
            took.as_secs_f64(),
            ms(p99_before),
            ms(p99_during)
        );
        figures = json!({"scenario": "logins", "logins": n, "logins_ok": ok, "logins_secs": took.as_secs_f64(),
            "logins_per_sec": logins_per_sec, "fanout_p99_before_ms": ms(p99_before), "fanout_p99_during_ms": ms(p99_during),
            "p99_ratio": if p99_before > 0 { f64::from(p99_during) / f64::from(p99_before) } else { 0.0 },
            "fanout": figures});
    }
    Ok(figures)
}

async fn churn(cli: &Cli, server: &Server, n: usize, rounds: usize) -> Result<Value, String> {
    let cookies = client::accounts(&server.base, cli.users.min(n).max(1)).await?;
    let mut fleet = fleet(cli, server, cookies, n as u64);
    fleet.open(n).await?;
    if fleet.wait_all_at(n as u64, Duration::from_secs(30)).await.is_none() {
        return Err("the fleet never saw its own size".into());
    }
    let churn_started = Instant::now();
    for round in 0..rounds {
        let doomed: Vec<usize> = (0..n).filter(|i| (i + round) % 10 == 0).collect();
        for &i in &doomed {
            fleet.reset(i);
        }
        fleet.reopen(&doomed).await?;
    }
    let churned = churn_started.elapsed();
    let settled = fleet.wait_all_at(n as u64, Duration::from_secs(60)).await;
    let exact = settled.is_some();
    let settle_ms = settled.map_or(-1.0, |d| d.as_secs_f64() * 1000.0);
    eprintln!(
        "churn {n} x {rounds} rounds of 10%: churned in {:.1} s; every count exact {settle_ms:.0} ms after the last reopen (exact: {exact}; {} of {n} at the truth)",
        churned.as_secs_f64(),
        fleet.how_many_at(n as u64)
    );
    fleet.finish().await;
    Ok(json!({"scenario": "churn", "n": n, "rounds": rounds, "churn_secs": churned.as_secs_f64(),
              "counts_exact": exact, "exact_after_ms": settle_ms}))
}

async fn http(cli: &Cli, server: &Server, secs: f64, conns: usize) -> Result<Value, String> {
    let cookie = client::accounts(&server.base, 1).await?.remove(0);
    let _ = cli;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let url = format!("{}/profile", server.base);
    let tasks: Vec<_> = (0..conns.max(1))
        .map(|_| {
            let (url, cookie) = (url.clone(), cookie.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
                let (mut ok, mut bad) = (0u64, 0u64);
                while Instant::now() < until {
                    match client.get(&url).header("cookie", &cookie).send().await {
                        Ok(res) if res.status().is_success() => {
                            let _ = res.bytes().await;
                            ok += 1;
                        }
                        _ => bad += 1,
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    let (mut ok, mut bad) = (0, 0);
    for task in tasks {
        let (o, b) = task.await.map_err(|e| e.to_string())?;
        ok += o;
        bad += b;
    }
    let per_sec = ok as f64 / secs;
    eprintln!(
        "http GET /profile over {conns} connections for {secs}s: {per_sec:.0} requests/s ({bad} failed) [this tool's client]"
    );
    // wrk, where installed, is a far lighter client: its figure is the server's.
    let wrk = wrk_requests_per_sec(&url, &cookie, secs, conns);
    if let Some(wrk) = wrk {
        eprintln!("http GET /profile with wrk (1 thread, {conns} connections, {secs}s): {wrk:.0} requests/s");
    }
    Ok(json!({"scenario": "http", "conns": conns, "secs": secs, "requests_per_sec": per_sec, "failed": bad,
              "wrk_requests_per_sec": wrk}))
}

/// `wrk -t1` against `url`; `None` when wrk is not installed or saw errors.
fn wrk_requests_per_sec(url: &str, cookie: &str, secs: f64, conns: usize) -> Option<f64> {
    let duration = format!("-d{}s", secs.ceil() as u64);
    let header = format!("Cookie: {cookie}");
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &duration, "-H", &header, url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        return None;
    }
    text.lines().find(|l| l.starts_with("Requests/sec:"))?.split_whitespace().nth(1)?.parse().ok()
}
