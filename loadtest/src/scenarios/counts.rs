use super::*;

pub(super) async fn storm(cli: &Cli, server: &Server, n: usize) -> Result<Value, String> {
    let cookies = client::accounts(server.base(), cli.users.min(n).max(1)).await?;
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

pub(super) async fn churn(cli: &Cli, server: &Server, n: usize, rounds: usize) -> Result<Value, String> {
    let cookies = client::accounts(server.base(), cli.users.min(n).max(1)).await?;
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

/// Holds N sockets dealt over the nodes, then kills the last node with
/// SIGKILL: how long until every surviving socket shows the true count
/// (its connections counted out, by the database's clock, within NODE_TTL).
pub(super) async fn failover(cli: &Cli, server: &mut Server, n: usize) -> Result<Value, String> {
    let nodes = server.nodes.len();
    if nodes < 2 {
        return Err("failover needs --nodes 2 or more".into());
    }
    let cookies = client::accounts(server.base(), cli.users.min(n).max(1)).await?;
    let mut fleet = fleet(cli, server, cookies, n as u64);
    fleet.open(n).await?;
    if fleet.wait_all_at(n as u64, Duration::from_secs(30)).await.is_none() {
        return Err("the fleet never saw its own size".into());
    }
    let doomed: Vec<usize> = fleet.on_node(nodes - 1).collect();
    let survivors = (n - doomed.len()) as u64;
    server.kill(nodes - 1)?;
    let counted_out = fleet.wait_others_at(survivors, &doomed, Duration::from_secs(60)).await;
    let exact = counted_out.is_some();
    let after_ms = counted_out.map_or(-1.0, |d| d.as_secs_f64() * 1000.0);
    eprintln!(
        "failover: {n} sockets on {nodes} nodes, killed the last ({} sockets); every survivor shows {survivors} {after_ms:.0} ms later (exact: {exact})",
        doomed.len()
    );
    for i in doomed {
        fleet.reset(i);
    }
    fleet.finish().await;
    Ok(json!({"scenario": "failover", "n": n, "nodes": nodes, "killed_sockets": n as u64 - survivors,
              "counts_exact": exact, "counted_out_after_ms": after_ms}))
}
