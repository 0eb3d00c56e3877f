use super::*;

pub(super) async fn idle(
    cli: &Cli,
    server: &Server,
    n: usize,
    history: usize,
    burst: usize,
    rooms: usize,
) -> Result<Value, String> {
    let cookies = client::accounts(server.base(), cli.users.min(n).max(1)).await?;
    // Every user in `rooms` rooms, each with all of them (made by the first).
    let people: Vec<String> = (1..cookies.len()).map(|i| format!("load{i}")).collect();
    for k in 0..rooms {
        private_room(server.base(), &cookies[0], &format!("idle{k}"), &people).await?;
    }
    post_history(server.base(), &cookies[0], history).await?;
    settle().await;
    let rss_before = server.rss_kib();
    let started = Instant::now();
    let exact = if cli.procs <= 1 {
        let poster = cookies[0].clone();
        let mut fleet = fleet(cli, server, cookies, n as u64);
        fleet.open(n).await?;
        let reached = fleet.wait_all_at(n as u64, Duration::from_secs(60)).await.is_some();
        settle().await;
        let rss_after = server.rss_kib();
        let rss_burst = after_burst(server, &poster, burst).await?;
        let exact = reached && fleet.all_at(n as u64);
        fleet.finish().await;
        (exact, rss_after, rss_burst)
    } else {
        idle_in_processes(cli, server, n, &cookies, burst).await?
    };
    let (exact, rss_after, rss_burst) = exact;
    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    eprintln!(
        "idle {n}: server RSS {rss_before} KiB -> {rss_after} KiB, {per_conn:.2} KiB per connection; every count exact: {exact} (opened in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let mut figures = json!({"scenario": "idle", "n": n, "rss_before_kib": rss_before, "rss_after_kib": rss_after,
              "kib_per_conn": per_conn, "counts_exact": exact, "procs": cli.procs.max(1), "history": history,
              "rooms_per_user": rooms});
    if let Some(rss_burst) = rss_burst {
        let per_conn_burst = (rss_burst.saturating_sub(rss_before)) as f64 / n as f64;
        eprintln!(
            "idle {n} after a burst of {burst} messages to every socket: {rss_burst} KiB, {per_conn_burst:.2} KiB per connection"
        );
        figures["burst"] = json!(burst);
        figures["rss_after_burst_kib"] = json!(rss_burst);
        figures["kib_per_conn_after_burst"] = json!(per_conn_burst);
    }
    Ok(figures)
}

/// Sends `burst` messages at once (every socket receives them all), waits
/// until things are idle again, and measures the server's RSS.
async fn after_burst(server: &Server, cookie: &str, burst: usize) -> Result<Option<u64>, String> {
    if burst == 0 {
        return Ok(None);
    }
    post_history(server.base(), cookie, burst).await?;
    settle().await;
    settle().await;
    Ok(Some(server.rss_kib()))
}

/// `idle` over several client processes: each holds its share, says when all
/// its sockets see the total, and holds on until told to let go.
async fn idle_in_processes(
    cli: &Cli,
    server: &Server,
    n: usize,
    cookies: &[String],
    burst: usize,
) -> Result<(bool, u64, Option<u64>), String> {
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), cookies.join("\n")).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let share = n.div_ceil(cli.procs);
    let (urls, pids) = server.urls_and_pids();
    let mut children = Vec::new();
    for p in 0..cli.procs {
        let conns = share.min(n - (p * share).min(n));
        let child = Command::new(&exe)
            .args(["--url", &urls, "--pid", &pids])
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
    let rss_burst = after_burst(server, &cookies[0], burst).await?;
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
    Ok((exact, rss_after, rss_burst))
}

/// The child side of `idle_in_processes`.
pub(super) async fn hold(
    cli: &Cli,
    conns: usize,
    total: usize,
    offset: usize,
    cookies: &std::path::Path,
) -> Result<Value, String> {
    let bases: Vec<String> =
        cli.url.as_deref().ok_or("hold needs --url")?.split(',').map(str::to_owned).collect();
    let cookies: Vec<String> =
        std::fs::read_to_string(cookies).map_err(|e| e.to_string())?.lines().map(str::to_owned).collect();
    // Keep each process's users distinct from the others' by rotating the list.
    let mut rotated = cookies.clone();
    rotated.rotate_left(offset % cookies.len().max(1));
    let mut fleet = Fleet::new(bases, rotated, Sources(cli.source_addrs), cli.parallel, total as u64);
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
