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
