//! Rooms: what a message to a small room costs, next to the same deliveries
//! in the lobby; what a user in many rooms costs to greet.

use super::*;

/// JSON to the rooms API with a session cookie; the status and the body.
async fn api(base: &str, cookie: &str, path: &str, body: Value) -> Result<(u16, Value), String> {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Makes a private room named `name` by `cookie`'s user with `people`; its id.
pub(super) async fn private_room(
    base: &str,
    cookie: &str,
    name: &str,
    people: &[String],
) -> Result<i64, String> {
    let body = json!({"name": name, "kind": "private", "people": people});
    match api(base, cookie, "/api/rooms", body).await? {
        (201, room) => room["id"].as_i64().ok_or_else(|| "a room without an id".to_owned()),
        (status, body) => Err(format!("making room {name}: {status} {body}")),
    }
}

/// A sender's socket, open before a phase is measured (its arrival is
/// announced to every socket, which is not what a phase measures) and
/// closed after.
struct Sender {
    out: futures_util::stream::SplitSink<client::Ws, Message>,
    drain: tokio::task::JoinHandle<()>,
    rooms: Vec<Option<i64>>,
}

async fn open_sender(base: &str, cookie: &str, rooms: Vec<Option<i64>>) -> Result<Sender, String> {
    let ws = client::open(base, cookie, "", Sources(0), 0).await?;
    let (out, mut incoming) = ws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = incoming.next().await {} });
    Ok(Sender { out, drain, rooms })
}

/// Sends stamped messages at `rate` a second for `secs`, each to the next
/// of its rooms (`None`: the lobby); how many it sent.
async fn send_to(mut sender: Sender, rate: f64, secs: f64) -> Result<(Sender, u64), String> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut sent = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        let text = format!("{sent}:{}", reader::now_nanos());
        let data = match sender.rooms[sent as usize % sender.rooms.len()] {
            Some(room) => json!({"room": room, "message": text}),
            None => json!(text),
        };
        sender
            .out
            .send(Message::text(json!({"event": "chat message", "data": data}).to_string()))
            .await
            .map_err(|e| e.to_string())?;
        sent += 1;
    }
    Ok((sender, sent))
}

/// One phase of sending: its figures.
struct Phase {
    sent: u64,
    delivered: u64,
    cpu: f64,
}

/// The senders connect, and once every receiver has seen them (the count
/// `everyone`), the server's CPU is measured from the first message to the
/// last delivery; then the senders leave.
async fn phase(
    server: &Server,
    receivers: &Fleet,
    senders: &[(String, Vec<Option<i64>>)],
    everyone: u64,
    rate: f64,
    secs: f64,
    per_message: u64,
) -> Result<Phase, String> {
    let mut open = Vec::with_capacity(senders.len());
    for (cookie, rooms) in senders {
        open.push(open_sender(server.base(), cookie, rooms.clone()).await?);
    }
    if receivers.wait_all_at(everyone, Duration::from_secs(60)).await.is_none() {
        return Err(format!("the receivers did not all see {everyone} connected"));
    }
    settle().await;
    let delivered = || receivers.seen.iter().map(|s| s.chat.load(Ordering::Relaxed)).sum::<u64>();
    let before = delivered();
    let cpu_before = server.cpu_secs();
    let tasks: Vec<_> = open
        .into_iter()
        .map(|sender| tokio::spawn(send_to(sender, rate / senders.len() as f64, secs)))
        .collect();
    let mut sent = 0;
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (sender, n) = task.await.map_err(|e| e.to_string())??;
        sent += n;
        done.push(sender);
    }
    let expected = before + sent * per_message;
    let deadline = Instant::now() + Duration::from_secs(5);
    while delivered() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let phase = Phase { sent, delivered: delivered() - before, cpu: server.cpu_secs() - cpu_before };
    for mut sender in done {
        let _ = sender.out.close().await;
        sender.drain.abort();
    }
    Ok(phase)
}

/// N sockets (one user each) in private rooms of SIZE; RATE messages a
/// second to the rooms for SECS; then the same messages as a lobby fan-out to
/// SIZE sockets alone: server CPU per delivered frame of each. Equal figures
/// mean a room's message costs the sockets outside it nothing.
pub(super) async fn rooms(
    cli: &Cli,
    server: &Server,
    n: usize,
    size: usize,
    rate: f64,
    secs: f64,
) -> Result<Value, String> {
    let size = size.clamp(2, n.max(2));
    let groups = n / size;
    let senders = 4.min(groups.max(1));
    let cookies = client::accounts(server.base(), n + senders).await?;
    let (receiver_cookies, sender_cookies) = cookies.split_at(n);
    // Each room: SIZE receivers and one sender, made by its first receiver.
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    let tasks: Vec<_> = (0..groups)
        .map(|g| {
            let base = server.base().to_owned();
            let creator = receiver_cookies[g * size].clone();
            let sender = g % senders;
            let people: Vec<String> = (g * size + 1..(g + 1) * size)
                .map(|i| format!("load{i}"))
                .chain([format!("load{}", n + sender)])
                .collect();
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire().await;
                private_room(&base, &creator, &format!("room{g}"), &people).await.map(|id| (sender, id))
            })
        })
        .collect();
    let mut rooms_of: Vec<Vec<Option<i64>>> = vec![Vec::new(); senders];
    for task in tasks {
        let (sender, room) = task.await.map_err(|e| e.to_string())??;
        rooms_of[sender].push(Some(room));
    }
    let total = (n + senders) as u64;
    let mut receivers = fleet(cli, server, receiver_cookies.to_vec(), total);
    receivers.open(n).await?;
    let senders_with_rooms: Vec<(String, Vec<Option<i64>>)> =
        sender_cookies.iter().cloned().zip(rooms_of).collect();
    let in_rooms = phase(server, &receivers, &senders_with_rooms, total, rate, secs, size as u64).await?;
    let mut all: Vec<u32> = receivers.finish().await.iter().flatten().map(|(_, l)| *l).collect();
    all.sort_unstable();
    // The same messages with the same deliveries each, as a lobby fan-out:
    // SIZE sockets and one sender, nobody else connected. The difference is
    // what the other sockets cost while not being written to.
    settle().await;
    let mut few = fleet(cli, server, receiver_cookies[..size].to_vec(), (size + 1) as u64);
    few.open(size).await?;
    let lobby_sender = vec![(sender_cookies[0].clone(), vec![None])];
    let in_lobby = phase(server, &few, &lobby_sender, (size + 1) as u64, rate, secs, size as u64).await?;
    let mut lobby_latencies: Vec<u32> = few.finish().await.iter().flatten().map(|(_, l)| *l).collect();
    lobby_latencies.sort_unstable();
    let per = |p: &Phase| p.cpu * 1e6 / p.delivered.max(1) as f64;
    let (rooms_us, lobby_us) = (per(&in_rooms), per(&in_lobby));
    let lost = (in_rooms.sent * size as u64).saturating_sub(in_rooms.delivered)
        + (in_lobby.sent * size as u64).saturating_sub(in_lobby.delivered);
    eprintln!(
        "rooms: {n} sockets, {groups} rooms of {size}: {} messages to rooms, {} deliveries, {rooms_us:.2} µs of server CPU each \
         (p50 {:.1} ms, p99 {:.1} ms); the same as a lobby of {size}: {} messages, {} deliveries, {lobby_us:.2} µs each \
         (p50 {:.1} ms, p99 {:.1} ms); rooms/lobby {:.2}x; lost {lost}",
        in_rooms.sent,
        in_rooms.delivered,
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        in_lobby.sent,
        in_lobby.delivered,
        ms(percentile(&lobby_latencies, 50.0)),
        ms(percentile(&lobby_latencies, 99.0)),
        rooms_us / lobby_us.max(f64::MIN_POSITIVE),
    );
    Ok(json!({"scenario": "rooms", "n": n, "rooms": groups, "size": size, "rate": rate, "secs": secs,
        "room_messages": in_rooms.sent, "room_deliveries": in_rooms.delivered, "room_cpu_secs": in_rooms.cpu,
        "cpu_us_per_delivery": rooms_us,
        "lobby_messages": in_lobby.sent, "lobby_deliveries": in_lobby.delivered, "lobby_cpu_secs": in_lobby.cpu,
        "lobby_cpu_us_per_delivery": lobby_us, "rooms_over_lobby": rooms_us / lobby_us.max(f64::MIN_POSITIVE),
        "lost": lost, "p50_ms": ms(percentile(&all, 50.0)), "p99_ms": ms(percentile(&all, 99.0)),
        "lobby_p50_ms": ms(percentile(&lobby_latencies, 50.0)), "lobby_p99_ms": ms(percentile(&lobby_latencies, 99.0))}))
}

/// One user in ROOMS rooms connects CONNECTS times, one after another: the
/// time from the upgrade to the end of the greeting, and server CPU each.
/// (ROOMS 0 works on a server without rooms, for a comparison.)
pub(super) async fn greeting(server: &Server, in_rooms: usize, connects: usize) -> Result<Value, String> {
    let makers = in_rooms.div_ceil(10);
    let cookies = client::accounts(server.base(), makers + 1).await?;
    let (me, makers) = (cookies[0].clone(), &cookies[1..]);
    // Rooms are made by others (ten a minute each), with this user in them.
    let mut made = 0;
    for (m, cookie) in makers.iter().enumerate() {
        for k in 0..10.min(in_rooms - made) {
            private_room(server.base(), cookie, &format!("g{m}-{k}"), &["load0".to_owned()]).await?;
            made += 1;
        }
    }
    let mut took = Vec::with_capacity(connects);
    let cpu_before = server.cpu_secs();
    for _ in 0..connects {
        let started = Instant::now();
        let mut ws = client::open(server.base(), &me, "", Sources(0), 0).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"event":"chat history""#) => break,
                Some(Ok(_)) => {}
                _ => return Err("the socket closed during its greeting".into()),
            }
        }
        took.push(started.elapsed().as_micros() as u32);
        drop(ws);
    }
    let cpu = server.cpu_secs() - cpu_before;
    took.sort_unstable();
    let (p50, p99) = (percentile(&took, 50.0), percentile(&took, 99.0));
    let cpu_us = cpu * 1e6 / connects.max(1) as f64;
    eprintln!(
        "greeting: a user in {in_rooms} rooms, {connects} connects: p50 {:.2} ms, p99 {:.2} ms, server CPU {cpu_us:.0} µs each",
        ms(p50),
        ms(p99)
    );
    Ok(
        json!({"scenario": "greeting", "rooms": in_rooms, "connects": connects, "p50_ms": ms(p50), "p99_ms": ms(p99),
        "cpu_us_per_greeting": cpu_us}),
    )
}
