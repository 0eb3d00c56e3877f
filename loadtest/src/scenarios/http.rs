use super::*;

pub(super) async fn http(cli: &Cli, server: &Server, secs: f64, conns: usize) -> Result<Value, String> {
    let cookie = client::accounts(server.base(), 1).await?.remove(0);
    let _ = cli;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let url = format!("{}/profile", server.base());
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

/// Random pages of scrollback, as readers scrolling up would ask for them.
pub(super) async fn scrollback(
    cli: &Cli,
    server: &Server,
    secs: f64,
    conns: usize,
    messages: usize,
) -> Result<Value, String> {
    let _ = cli;
    let cookie = client::accounts(server.base(), 1).await?.remove(0);
    post_history(server.base(), &cookie, messages.max(100)).await?;
    let top = messages.max(100) as i64;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..conns.max(1))
        .map(|c| {
            let (base, cookie) = (server.base().to_owned(), cookie.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
                let (mut latencies, mut bad) = (Vec::new(), 0u64);
                // A cheap spread of `before` over the chat, different per connection.
                let mut before = 51 + (c as i64 * 7919) % (top - 51);
                while Instant::now() < until {
                    before = 51 + (before * 48_271 + 11) % (top - 51);
                    let url = format!("{base}/api/messages?before={before}&limit=50");
                    let t0 = Instant::now();
                    match client.get(&url).header("cookie", &cookie).send().await {
                        Ok(res) if res.status().is_success() => {
                            let body = res.bytes().await.unwrap_or_default();
                            if body.starts_with(br#"{"messages":[{"id":"#) {
                                latencies.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            } else {
                                bad += 1;
                            }
                        }
                        _ => bad += 1,
                    }
                }
                (latencies, bad)
            })
        })
        .collect();
    let (mut all, mut bad) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, b) = task.await.map_err(|e| e.to_string())?;
        all.extend(latencies);
        bad += b;
    }
    all.sort_unstable();
    let per_sec = all.len() as f64 / secs;
    let (p50, p99) = (percentile(&all, 50.0), percentile(&all, 99.0));
    eprintln!(
        "scrollback GET /api/messages?before=…&limit=50 over {conns} connections for {secs}s: {per_sec:.0} pages/s ({bad} failed); latency p50 {:.1} ms, p99 {:.1} ms [this tool's client]",
        ms(p50),
        ms(p99)
    );
    Ok(
        json!({"scenario": "scrollback", "conns": conns, "secs": secs, "messages": top, "pages_per_sec": per_sec,
              "failed": bad, "p50_ms": ms(p50), "p99_ms": ms(p99)}),
    )
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
