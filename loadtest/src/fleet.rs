//! A fleet of open client sockets, each with its reader task.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Semaphore, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    client::{self, Sources},
    reader::{self, Latencies, Seen},
};

pub struct Fleet {
    /// The nodes; socket i goes to node i mod len.
    pub bases: Arc<Vec<String>>,
    pub cookies: Arc<Vec<String>>,
    pub sources: Sources,
    pub parallel: usize,
    pub start: Instant,
    /// The count every socket should end up seeing.
    pub target: Arc<AtomicU64>,
    pub seen: Vec<Arc<Seen>>,
    tasks: Vec<JoinHandle<Latencies>>,
    stop: watch::Sender<bool>,
    typing: watch::Sender<bool>,
    opened: usize,
}

impl Fleet {
    pub fn new(
        bases: Vec<String>,
        cookies: Vec<String>,
        sources: Sources,
        parallel: usize,
        target: u64,
    ) -> Fleet {
        Fleet {
            bases: Arc::new(bases),
            cookies: Arc::new(cookies),
            sources,
            parallel: parallel.max(1),
            start: Instant::now(),
            target: Arc::new(AtomicU64::new(target)),
            seen: Vec::new(),
            tasks: Vec::new(),
            stop: watch::Sender::new(false),
            typing: watch::Sender::new(false),
            opened: 0,
        }
    }

    /// Opens `n` more sockets, `parallel` handshakes at a time; cookies and
    /// nodes are dealt round-robin, so each user has several tabs, on several nodes.
    pub async fn open(&mut self, n: usize) -> Result<(), String> {
        let permits = Arc::new(Semaphore::new(self.parallel));
        let handshakes: Vec<_> = (0..n)
            .map(|k| {
                let i = self.opened + k;
                let (bases, cookies, sources, permits) =
                    (self.bases.clone(), self.cookies.clone(), self.sources, permits.clone());
                tokio::spawn(async move {
                    let _permit = permits.acquire().await;
                    client::open(&bases[i % bases.len()], &cookies[i % cookies.len()], "", sources, i).await
                })
            })
            .collect();
        for handshake in handshakes {
            let ws = handshake.await.map_err(|e| e.to_string())??;
            let seen = Arc::new(Seen::default());
            let task = reader::spawn(
                ws,
                seen.clone(),
                self.target.clone(),
                self.start,
                self.stop.subscribe(),
                self.typing.subscribe(),
            );
            self.seen.push(seen);
            self.tasks.push(task);
        }
        self.opened += n;
        Ok(())
    }

    /// Every socket starts (or stops) sending `typing` as a person types.
    pub fn type_along(&self, typing: bool) {
        let _ = self.typing.send(typing);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn all_at(&self, count: u64) -> bool {
        self.seen.iter().all(|s| s.last_count.load(Ordering::Relaxed) == count)
    }

    /// The sockets on node `node` (of `nodes`).
    pub fn on_node(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let nodes = self.bases.len();
        (0..self.seen.len()).filter(move |i| i % nodes == node)
    }

    /// Polls until every socket but those in `except` shows `count`.
    pub async fn wait_others_at(&self, count: u64, except: &[usize], within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            let all = self
                .seen
                .iter()
                .enumerate()
                .filter(|(i, _)| !except.contains(i))
                .all(|(_, s)| s.last_count.load(Ordering::Relaxed) == count);
            if all {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    pub fn how_many_at(&self, count: u64) -> usize {
        self.seen.iter().filter(|s| s.last_count.load(Ordering::Relaxed) == count).count()
    }

    /// Polls until every socket's latest count is `count`; how long it took.
    pub async fn wait_all_at(&self, count: u64, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.all_at(count) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    /// Drops socket `i` abruptly: its task ends, the TCP connection is reset.
    pub fn reset(&mut self, i: usize) {
        self.tasks[i].abort();
    }

    /// Replaces the sockets at `indices` (already reset) with new ones.
    pub async fn reopen(&mut self, indices: &[usize]) -> Result<(), String> {
        let before = self.len();
        self.open(indices.len()).await?;
        for (k, &i) in indices.iter().enumerate() {
            self.seen.swap(i, before + k);
            self.tasks.swap(i, before + k);
        }
        self.seen.truncate(before);
        self.tasks.truncate(before);
        Ok(())
    }

    /// Stops every reader and hands back what they measured.
    pub async fn finish(self) -> Vec<Latencies> {
        let _ = self.stop.send(true);
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            if let Ok(latencies) = task.await {
                all.push(latencies);
            }
        }
        all
    }
}
