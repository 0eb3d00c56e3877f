use super::*;

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

/// What happens half way through a fanout, to see what it costs the fanout.
#[derive(Clone, Copy)]
pub(super) enum Midway {
    Nothing,
    /// This many logins at once.
    Logins(usize),
    /// Every receiver sends `typing` until the end.
    Typing,
}

pub(super) async fn fanout(
    cli: &Cli,
    server: &Server,
    n: usize,
    rate: f64,
    secs: f64,
    midway: Midway,
) -> Result<Value, String> {
    let senders = match cli.senders {
        0 => rate.ceil().clamp(1.0, 4.0) as usize,
        k => k,
    };
    let cookies = client::accounts(server.base(), cli.users.max(senders + 1)).await?;
    let (sender_cookies, receiver_cookies) = cookies.split_at(senders);
    let total = (n + senders) as u64;
    let mut receivers = fleet(cli, server, receiver_cookies.to_vec(), total);
    receivers.open(n).await?;

    let sent = Arc::new(AtomicU64::new(0));
    let cpu_before = server.cpu_secs();
    let load_cpu_before = crate::server::own_cpu_secs();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut sending = Vec::new();
    let bases = server.bases();
    for (i, cookie) in sender_cookies.iter().enumerate() {
        sending.push(tokio::spawn(sender(
            bases[i % bases.len()].clone(),
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

    // The login burst or the typing, half way through.
    let window = match midway {
        Midway::Nothing => None,
        Midway::Logins(count) => {
            tokio::time::sleep_until(started + Duration::from_secs_f64(secs / 2.0)).await;
            let from = reader::now_nanos();
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..count)
                .map(|i| {
                    let base = server.base().to_owned();
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
        Midway::Typing => {
            tokio::time::sleep_until(started + Duration::from_secs_f64(secs / 2.0)).await;
            let from = reader::now_nanos();
            let t0 = Instant::now();
            receivers.type_along(true);
            tokio::time::sleep_until(until).await;
            receivers.type_along(false);
            Some((from, reader::now_nanos(), n, t0.elapsed()))
        }
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
    let cpu = server.cpu_secs() - cpu_before;
    // This tool shares the machine: together they say how busy the box was.
    let load_cpu = crate::server::own_cpu_secs() - load_cpu_before;
    let busy_cores = (cpu + load_cpu) / started.elapsed().as_secs_f64();
    let cpu_us_per_delivery = cpu * 1e6 / delivered_total.max(1) as f64;
    let errors: u64 = receivers.seen.iter().map(|s| s.errors.load(Ordering::Relaxed)).sum();
    let receivers_typing: Vec<(u64, u64)> = receivers
        .seen
        .iter()
        .map(|s| (s.typing.load(Ordering::Relaxed), s.typing_max_per_sec.load(Ordering::Relaxed)))
        .collect();
    let latencies: Vec<Latencies> = receivers.finish().await;
    let mut all: Vec<u32> = latencies.iter().flatten().map(|(_, l)| *l).collect();
    all.sort_unstable();
    let lost = expected.saturating_sub(delivered_total);
    let per_sec = delivered_total as f64 / secs;
    let (p50, p99, max) = (percentile(&all, 50.0), percentile(&all, 99.0), all.last().copied().unwrap_or(0));
    eprintln!(
        "fanout {n} x {rate}/s for {secs}s ({} node(s), {senders} senders): {sent} messages, {delivered_total} deliveries ({per_sec:.0}/s), lost {lost}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server CPU {cpu:.2} s, {cpu_us_per_delivery:.2} µs per delivery; this tool {load_cpu:.2} s; {busy_cores:.2} cores busy",
        bases.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    let mut figures = json!({"scenario": "fanout", "nodes": bases.len(), "senders": senders, "n": n, "rate": rate, "secs": secs, "messages": sent,
        "deliveries": delivered_total, "deliveries_per_sec": per_sec, "lost": lost, "errors": errors,
        "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max), "server_cpu_secs": cpu,
        "cpu_us_per_delivery": cpu_us_per_delivery, "load_cpu_secs": load_cpu, "busy_cores": busy_cores});
    if let Some((from, to, ok, took)) = window {
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
        let p99_ratio = if p99_before > 0 { f64::from(p99_during) / f64::from(p99_before) } else { 0.0 };
        let took_secs = took.as_secs_f64();
        figures = match midway {
            Midway::Logins(n) => {
                let logins_per_sec = ok as f64 / took_secs;
                eprintln!(
                    "logins {n}: {ok} ok in {took_secs:.2} s ({logins_per_sec:.0}/s); fanout p99 before {:.1} ms, during {:.1} ms",
                    ms(p99_before),
                    ms(p99_during)
                );
                json!({"scenario": "logins", "logins": n, "logins_ok": ok, "logins_secs": took_secs,
                    "logins_per_sec": logins_per_sec, "fanout_p99_before_ms": ms(p99_before),
                    "fanout_p99_during_ms": ms(p99_during), "p99_ratio": p99_ratio, "fanout": figures})
            }
            _ => {
                let frames: u64 = receivers_typing.iter().map(|(count, _)| count).sum();
                // The server sends typists in half-second ticks: the last tick's
                // frames arrive just after the window, so it counts as that much longer.
                let per_socket_per_sec = frames as f64 / n.max(1) as f64 / (took_secs + 0.5);
                let max_in_a_second = receivers_typing.iter().map(|(_, max)| *max).max().unwrap_or(0);
                eprintln!(
                    "typing: {n} sockets typing for {took_secs:.1} s; typing frames per socket {per_socket_per_sec:.2}/s \
                     (at most {max_in_a_second} in any second); fanout p99 before {:.1} ms, during {:.1} ms ({p99_ratio:.2}x)",
                    ms(p99_before),
                    ms(p99_during)
                );
                json!({"scenario": "typing", "typists": n, "typing_secs": took_secs,
                    "typing_frames_per_socket_per_sec": per_socket_per_sec, "typing_frames_max_in_a_second": max_in_a_second,
                    "fanout_p99_before_ms": ms(p99_before), "fanout_p99_during_ms": ms(p99_during),
                    "p99_ratio": p99_ratio, "fanout": figures})
            }
        };
    }
    Ok(figures)
}
