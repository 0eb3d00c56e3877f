//! Search over a large chat: MESSAGES messages in ROOMS rooms, written
//! straight into the database (the server stopped; on SQLite the server's
//! indexer indexes them when it starts, timed), then real
//! `GET /api/search` requests from a user in `--member-of` of the rooms, one
//! at a time: latency per kind of query. Then what the index costs a commit:
//! chat messages sent through the server with the index, and again with it
//! dropped (issue 21: p99 ≤ 50 ms; commits at most 10% slower).

use sqlx::{Connection, PgConnection, SqliteConnection};

use super::*;

/// Common words of a chat among students and developers, most frequent first
/// (they are drawn with Zipf's law by rank); a made-up long tail follows.
const WORDS: &str = "the to and a i you it is of in that for we on this be have with do not \
    can are just so what at but was will if me my it's all out up get about there no yes \
    like know think one time when now they how here he she would go see make your some good \
    need did could back from today then more should work new ok okay thanks right also \
    meeting deploy server build test tests release branch fix bug issue review code merge \
    lunch tomorrow yesterday week monday friday morning afternoon later soon please sure \
    class homework assignment lecture exam project group notes slides question answer room \
    chat message file files upload image screenshot link page search index query database \
    postgres sqlite rust tokio axum memory cpu latency benchmark figure figures graph \
    staging production config settings password login account user users admin team \
    coffee pizza weekend holiday trip train bus car home office remote call video audio \
    problem solution idea plan draft version update change changes commit push pull request \
    error warning crash log logs trace metric alert dashboard customer client feature \
    design docs documentation readme chapter paper deadline grade teacher student students \
    library book books music movie game games score match team's player season weather \
    rain snow sun cold hot morning's evening night dinner breakfast kitchen garden city";

/// Syllables for the long tail: names, jargon, typos, the rare words real chats hold.
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ren", "to", "sa", "vu", "dor", "pe", "qui", "zan", "bel", "tho", "gri", "mun", "fa",
    "lex", "or", "pri", "sto", "wen", "yal", "cor", "di",
];

/// A small, fast, reproducible generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The vocabulary and its Zipf distribution (cumulative weights by rank).
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Vocabulary {
        let mut words: Vec<String> = WORDS.split_whitespace().map(str::to_owned).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        let mut rng = Rng(0x5eed);
        while words.len() < 20_000 {
            let parts = 2 + rng.below(3);
            let word: String = (0..parts).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    /// A word drawn by Zipf's law.
    fn word(&self, rng: &mut Rng) -> &str {
        let target = rng.unit() * self.cumulative[self.cumulative.len() - 1];
        let rank = self.cumulative.partition_point(|&c| c < target).min(self.words.len() - 1);
        &self.words[rank]
    }

    /// A message of 3 to 24 words.
    fn message(&self, rng: &mut Rng) -> String {
        let n = 3 + rng.below(22);
        let words: Vec<&str> = (0..n).map(|_| self.word(rng)).collect();
        words.join(" ")
    }
}

/// The kinds of query measured, and how each is drawn.
const KINDS: [&str; 4] = ["one_word", "two_words", "prefix", "phrase"];

fn query(kind: &str, vocabulary: &Vocabulary, rng: &mut Rng) -> String {
    // Words people look for: not the commonest few (`the`, `to`), which no
    // one searches for, but any other, by the same law as they are written.
    let sought = |rng: &mut Rng| loop {
        let w = vocabulary.word(rng);
        if w.len() > 3 {
            return w.to_owned();
        }
    };
    match kind {
        "one_word" => sought(rng),
        "two_words" => format!("{} {}", sought(rng), sought(rng)),
        "prefix" => sought(rng).chars().take(3).collect(),
        _ => {
            let message = vocabulary.message(rng);
            let words: Vec<&str> = message.split(' ').collect();
            let at = rng.below(words.len() - 1);
            format!("\"{} {}\"", words[at], words[at + 1])
        }
    }
}

/// The database behind the server, opened directly.
enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    async fn open(url: &str) -> Result<Db, String> {
        if url.starts_with("sqlite:") {
            Ok(Db::Sqlite(SqliteConnection::connect(url).await.map_err(|e| e.to_string())?))
        } else {
            Ok(Db::Postgres(PgConnection::connect(url).await.map_err(|e| e.to_string())?))
        }
    }

    async fn execute(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Db::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            Db::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
        }
        .map_err(|e| format!("{sql}: {e}"))
    }

    async fn scalar(&mut self, sql: &str) -> Result<i64, String> {
        match self {
            Db::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
            Db::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        }
        .map_err(|e| format!("{sql}: {e}"))
    }

    /// One statement inserting many messages (id = seq).
    async fn insert(&mut self, rows: &[(i64, i64, i64, String, i64)]) -> Result<(), String> {
        match self {
            Db::Sqlite(c) => {
                let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO messages (id, seq, room_id, user_id, body, sent_at) ",
                );
                sql.push_values(rows, |mut b, (id, room, user, body, at)| {
                    b.push_bind(id)
                        .push_bind(id)
                        .push_bind(room)
                        .push_bind(user)
                        .push_bind(body)
                        .push_bind(at);
                });
                sql.build().execute(c).await.map(drop)
            }
            Db::Postgres(c) => {
                let column =
                    |f: fn(&(i64, i64, i64, String, i64)) -> i64| rows.iter().map(f).collect::<Vec<_>>();
                let bodies: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
                sqlx::query(
                    "INSERT INTO messages (id, seq, room_id, user_id, body, sent_at)
                     SELECT id, id, room_id, user_id, body, sent_at
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[])
                       AS t (id, room_id, user_id, body, sent_at)",
                )
                .bind(column(|r| r.0))
                .bind(column(|r| r.1))
                .bind(column(|r| r.2))
                .bind(bodies)
                .bind(column(|r| r.4))
                .execute(c)
                .await
                .map(drop)
            }
        }
        .map_err(|e| format!("inserting messages: {e}"))
    }

    async fn close(self) {
        let _ = match self {
            Db::Sqlite(c) => c.close().await,
            Db::Postgres(c) => c.close().await,
        };
    }
}

/// Rooms `2..=rooms+1`, the searcher (`me`) in the first `member_of`, the
/// other user (`them`) in all; `messages` messages spread evenly over them.
async fn load(
    db: &mut Db,
    vocabulary: &Vocabulary,
    (rooms, member_of, messages): (usize, usize, usize),
    (me, them): (i64, i64),
) -> Result<(), String> {
    let postgres = matches!(db, Db::Postgres(_));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis()) as i64;
    let now = now_ms / 1000;
    db.execute("BEGIN").await?;
    for r in 0..rooms as i64 {
        let id = r + 2;
        let members = if (r as usize) < member_of { 2 } else { 1 };
        db.execute(&format!(
            "INSERT INTO rooms (id, kind, name, created_by, created_at, members) VALUES ({id}, 'private', 'search-{r}', {them}, {now}, {members});
             INSERT INTO memberships (room_id, user_id, level, joined_at) VALUES ({id}, {them}, 'all', {now})"
        ))
        .await?;
        if (r as usize) < member_of {
            db.execute(&format!(
                "INSERT INTO memberships (room_id, user_id, level, joined_at) VALUES ({id}, {me}, 'all', {now})"
            ))
            .await?;
        }
    }
    if postgres {
        db.execute(&format!("SELECT setval('rooms_id_seq', {})", rooms + 2)).await?;
    }
    db.execute("COMMIT").await?;
    let head = db.scalar("SELECT position FROM log_head WHERE id = 1").await?;
    let mut rng = Rng(0x0c0ffee);
    let batch = if postgres { 5_000 } else { 150 };
    let started = Instant::now();
    let mut rows = Vec::with_capacity(batch);
    for i in 0..messages as i64 {
        if i % 50_000 == 0 {
            if i > 0 {
                db.execute("COMMIT").await?;
                eprintln!("search: {i} messages written ({:.0} s)", started.elapsed().as_secs_f64());
            }
            db.execute("BEGIN").await?;
        }
        let room = 2 + rng.below(rooms) as i64;
        // A minute apart at most, the newest now.
        let at = now_ms - (messages as i64 - i) * 30_000;
        rows.push((head + 1 + i, room, them, vocabulary.message(&mut rng), at));
        if rows.len() == batch {
            db.insert(&rows).await?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        db.insert(&rows).await?;
    }
    db.execute(&format!("UPDATE log_head SET position = {} WHERE id = 1", head + messages as i64)).await?;
    // As if the server had planned their pushes as they came (its planner
    // would otherwise start on a million-message backlog).
    db.execute(&format!("UPDATE push_cursor SET position = {} WHERE id = 1", head + messages as i64)).await?;
    db.execute(
        "UPDATE rooms SET last_id = coalesce((SELECT max(id) FROM messages WHERE room_id = rooms.id), 0)",
    )
    .await?;
    db.execute("COMMIT").await?;
    if postgres {
        // As autovacuum would have by the time a chat held this much.
        db.execute("VACUUM ANALYZE messages").await?;
    }
    eprintln!(
        "search: {messages} messages in {rooms} rooms written in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `GET /api/search?q=…` `count` times for each kind of query, one at a
/// time: latencies (µs, sorted) per kind, and the results found.
async fn measure_queries(
    base: &str,
    cookie: &str,
    vocabulary: &Vocabulary,
    count: usize,
) -> Result<Vec<(&'static str, Vec<u32>, usize, usize)>, String> {
    let client = reqwest::Client::new();
    let mut rng = Rng(0xfeed);
    let mut out = Vec::new();
    // Warm up: the first queries read the index from disk into the page cache.
    for _ in 0..20 {
        let q = query("one_word", vocabulary, &mut rng);
        client
            .get(format!("{base}/api/search"))
            .query(&[("q", q)])
            .header("cookie", cookie)
            .send()
            .await
            .ok();
    }
    for kind in KINDS {
        let (mut took, mut found, mut empty) = (Vec::with_capacity(count), 0, 0);
        for _ in 0..count {
            let q = query(kind, vocabulary, &mut rng);
            let t0 = Instant::now();
            let res = client
                .get(format!("{base}/api/search"))
                .query(&[("q", &q)])
                .header("cookie", cookie)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            let text = res.text().await.map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            took.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if !status.is_success() {
                return Err(format!("search {q:?}: {status} {body}"));
            }
            let n = body["results"].as_array().map_or(0, Vec::len);
            found += n;
            empty += usize::from(n == 0);
        }
        took.sort_unstable();
        out.push((kind, took, found, empty));
    }
    Ok(out)
}

/// What committing chat messages took.
struct Commits {
    /// One at a time: each commit's latency (µs, sorted).
    took: Vec<u32>,
    /// At once: the median round's messages per second.
    burst_rate: f64,
    /// All rounds, back to back: messages per second over the lot, with
    /// whatever work the server does after a round (SQLite's indexer)
    /// running into the next.
    rounds_rate: f64,
}

impl Commits {
    fn figures(&self) -> Value {
        json!({"p50_ms": ms(percentile(&self.took, 50.0)), "p99_ms": ms(percentile(&self.took, 99.0)),
               "burst_per_sec": self.burst_rate, "rounds_per_sec": self.rounds_rate})
    }
}

/// `count` chat messages to `room`, one at a time (each sent when the last
/// came back); then five times `count` at once over 4 sockets, in five
/// rounds back to back.
async fn measure_commits(base: &str, cookie: &str, room: i64, count: usize) -> Result<Commits, String> {
    let send = |text: String| {
        let frame = json!({"event": "chat message", "data": {"room": room, "message": text}});
        Message::text(frame.to_string())
    };
    let mut ws = client::open(base, cookie, "", Sources(0), 0).await?;
    let mut took = Vec::with_capacity(count);
    let mut rng = Rng(0xbeef);
    let vocabulary_free =
        |i: usize, rng: &mut Rng| format!("commit {i} {} {}", rng.next(), "words ".repeat(8));
    for i in 0..count {
        let marker = format!("commit {i} ");
        let t0 = Instant::now();
        ws.send(send(vocabulary_free(i, &mut rng))).await.map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains(&marker) => break,
                Some(Ok(_)) => {}
                _ => return Err("the sender's socket closed".into()),
            }
        }
        took.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    took.sort_unstable();
    // At once: 4 senders, opened first, each sending its share of five times
    // `count` and waiting for its own last message; five rounds, the median
    // rate. The last echo comes with the follower's next read of the log,
    // up to 25 ms after the commit, so a round's rate is only good to about
    // a fifth; more at once from these sockets, and the server closes them
    // as too far behind (1013), as it should a client that floods.
    let mut senders = Vec::with_capacity(4);
    for _ in 0..4 {
        senders.push(client::open(base, cookie, "", Sources(0), 0).await?);
    }
    let per = burst_size(count) / 4;
    let mut rates = Vec::with_capacity(BURST_ROUNDS);
    let all_rounds = Instant::now();
    for round in 0..BURST_ROUNDS {
        let started = Instant::now();
        let bursts = senders.drain(..).enumerate().map(|(s, mut ws)| async move {
            for i in 0..per {
                let text = format!("burst {round} {s} {i} some words to index");
                ws.send(send(text)).await.map_err(|e| e.to_string())?;
            }
            let last = format!("burst {round} {s} {} ", per - 1);
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str().contains(&last) => return Ok::<_, String>(ws),
                    Some(Ok(_)) => {}
                    _ => return Err("a burst sender's socket closed".into()),
                }
            }
        });
        senders = futures_util::future::try_join_all(bursts).await?;
        rates.push(per as f64 * 4.0 / started.elapsed().as_secs_f64());
    }
    let rounds_rate = (per * 4 * BURST_ROUNDS) as f64 / all_rounds.elapsed().as_secs_f64();
    rates.sort_by(f64::total_cmp);
    Ok(Commits { took, burst_rate: rates[BURST_ROUNDS / 2], rounds_rate })
}

/// Rounds of the burst: its rate is the median.
const BURST_ROUNDS: usize = 5;
/// Each round of the burst sends this many times `--commits`.
const BURST_TIMES: usize = 5;

/// The messages of one round of the burst: a share for each of 4 senders.
fn burst_size(count: usize) -> usize {
    count * BURST_TIMES / 4 * 4
}

/// SQLite: waits until the server's indexer has indexed every message
/// written behind its back (they were inserted without it), and says how
/// long that took. PostgreSQL indexed them as they were inserted.
async fn wait_indexed(url: &str) -> Result<Option<Duration>, String> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let mut db = Db::open(url).await?;
    let started = Instant::now();
    let caught_up = "SELECT (SELECT indexed_to FROM search_cursor) >= (SELECT max(id) FROM messages)";
    while db.scalar(caught_up).await? == 0 {
        if started.elapsed() > Duration::from_secs(900) {
            return Err("the server's search indexer did not catch up within 15 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    db.close().await;
    eprintln!("search: the server indexed them in {:.1} s after it started", took.as_secs_f64());
    Ok(Some(took))
}

/// Drops the search index (the server stopped): what commits cost without it.
async fn drop_index(db: &mut Db) -> Result<(), String> {
    match db {
        Db::Sqlite(_) => {
            for trigger in [
                "search_message_sent_behind",
                "search_message_changing",
                "search_message_changed",
                "search_message_removed",
            ] {
                db.execute(&format!("DROP TRIGGER {trigger}")).await?;
            }
            // Every message, now and to come, counts as indexed: the
            // indexer finds nothing to do.
            db.execute(&format!("UPDATE search_cursor SET indexed_to = {}", i64::MAX)).await?;
        }
        Db::Postgres(_) => {
            db.execute("ALTER TABLE messages DROP COLUMN words, DROP COLUMN grams").await?;
        }
    }
    Ok(())
}

pub(super) async fn search(
    cli: &Cli,
    server: &mut Server,
    (messages, rooms, member_of): (usize, usize, usize),
    queries: usize,
    commits: usize,
) -> Result<Value, String> {
    if rooms < member_of || member_of == 0 {
        return Err("--member-of must be between 1 and ROOMS".into());
    }
    let engine = if cli.nodes == 0 { "sqlite" } else { "postgres" };
    let url = server.database_url().ok_or("search needs a server this tool starts")?.to_owned();
    let cookies = client::accounts(server.base(), 2).await?;
    let me = cookies[0].clone();
    server.stop()?;
    let vocabulary = Vocabulary::new();
    let mut db = Db::open(&url).await?;
    let ids = (
        db.scalar("SELECT id FROM users WHERE username = 'load0'").await?,
        db.scalar("SELECT id FROM users WHERE username = 'load1'").await?,
    );
    load(&mut db, &vocabulary, (rooms, member_of, messages), ids).await?;
    db.close().await;
    server.start_again(cli.nodes).await?;
    let indexing = wait_indexed(&url).await?;

    let kinds = measure_queries(server.base(), &me, &vocabulary, queries).await?;
    let mut figures = json!({"scenario": "search", "engine": engine, "messages": messages, "rooms": rooms,
                             "member_of": member_of, "queries_per_kind": queries,
                             "indexed_after_start_sec": indexing.map(|d| d.as_secs_f64())});
    for (kind, took, found, empty) in &kinds {
        let (p50, p99) = (percentile(took, 50.0), percentile(took, 99.0));
        eprintln!(
            "search ({engine}, {messages} messages in {rooms} rooms, user in {member_of}): {kind:9} p50 {:6.2} ms, p99 {:6.2} ms, max {:6.2} ms; {:.1} results a query, {empty} of {queries} found nothing",
            ms(p50),
            ms(p99),
            ms(took.last().copied().unwrap_or(0)),
            *found as f64 / queries.max(1) as f64,
        );
        figures[*kind] = json!({"p50_ms": ms(p50), "p99_ms": ms(p99), "results_per_query": *found as f64 / queries.max(1) as f64, "empty": empty});
    }

    // Commits to one of the user's rooms, with the index and without.
    let with = measure_commits(server.base(), &me, 2, commits).await?;
    server.stop()?;
    let mut db = Db::open(&url).await?;
    drop_index(&mut db).await?;
    db.close().await;
    server.start_again(cli.nodes).await?;
    let without = measure_commits(server.base(), &me, 2, commits).await?;
    let slower = |with: f64, without: f64| if without > 0.0 { (with / without - 1.0) * 100.0 } else { 0.0 };
    let p50 = |c: &Commits| f64::from(percentile(&c.took, 50.0));
    let latency_slower = slower(p50(&with), p50(&without));
    let burst_slower = slower(without.burst_rate, with.burst_rate);
    let rounds_slower = slower(without.rounds_rate, with.rounds_rate);
    eprintln!(
        "search ({engine}): commits one at a time p50 {:.2} ms with the index, {:.2} ms without ({latency_slower:+.0}%); {} at once {:.0}/s with, {:.0}/s without ({burst_slower:+.0}% slower); {} rounds back to back {:.0}/s with, {:.0}/s without ({rounds_slower:+.0}% slower)",
        p50(&with) / 1000.0,
        p50(&without) / 1000.0,
        burst_size(commits),
        with.burst_rate,
        without.burst_rate,
        BURST_ROUNDS,
        with.rounds_rate,
        without.rounds_rate,
    );
    figures["commits"] = json!({"count": commits, "burst": burst_size(commits), "with_index": with.figures(),
        "without_index": without.figures(), "latency_p50_slower_pct": latency_slower,
        "burst_rate_slower_pct": burst_slower, "rounds_rate_slower_pct": rounds_slower});
    Ok(figures)
}
