//! The writer: everything this node adds to the chat log goes through here.
//! New messages go to one task that drains whatever is queued and commits it
//! in one transaction (group commit); edits and deletes, which are rare, are
//! written at once, each in its own transaction. Either way the follower is
//! woken, reads the change back and publishes it: a message anyone saw is
//! committed, and everyone sees one order.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use tokio::sync::Notify;

use crate::{
    domain::ChatText,
    rate::Rate,
    search_indexer::WriteTurns,
    store::{Batch, Change, ChangeError, NewFile, NewMessage, Outcome, Store, StoreError, UploadOutcome},
    tasks::Tasks,
};

/// How many messages one transaction takes at most.
const MAX_BATCH: usize = 512;
/// How long a batch's record is kept, for a retry to find (retries take seconds).
const KEEP_BATCHES: Duration = Duration::from_secs(600);
/// The longest one attempt may take (waiting for a connection included):
/// a database that is down gets its senders an answer in seconds.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The waits before a failed batch is tried again; after the last, its
/// senders are told (`unavailable`), within about 3.5 s of sending.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(500)];

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotSent {
    #[error("the sender's chat allowance is used up")]
    RateLimited(Duration),
    #[error("the sender is not a member of the room")]
    NotAMember,
    #[error("the message could not be saved")]
    NotSaved,
}

/// The answer to a submitted message, to come.
pub struct Saved(oneshot::Receiver<Result<i64, NotSent>>);

impl Saved {
    /// The message's id once committed, or why it was not (a message the
    /// queue refused, at shutdown, dropped its answer's sender: not saved).
    pub async fn outcome(self) -> Result<i64, NotSent> {
        self.0.await.unwrap_or(Err(NotSent::NotSaved))
    }
}

struct Post {
    user_id: i64,
    room: i64,
    text: ChatText,
    saved: oneshot::Sender<Result<i64, NotSent>>,
}

enum Command {
    Post(Post),
    /// Answered, once everything queued before it is committed, with the
    /// position of the last message this sequencer committed (0: none).
    Flush(oneshot::Sender<i64>),
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Command>,
    /// Edits and deletes are written at once (they are rare): no batch.
    store: Store,
    rate: Rate,
    /// The follower: woken after every change committed here.
    wake: Arc<Notify>,
    /// Cancelled for the writer's last commit (see [`Writer::finish`]).
    finish: CancellationToken,
    /// For the checkpoint after an edit or delete.
    tasks: Tasks,
}

impl Writer {
    /// Starts the batching task, owned by `tasks`. It runs until
    /// [`Writer::finish`], then refuses new messages, commits what is still
    /// queued and ends.
    /// Batches are committed in `turns` (shared with SQLite's search indexer).
    pub fn start(
        store: Store,
        turns: WriteTurns,
        rate: Rate,
        wake: Arc<Notify>,
        queue_len: usize,
        tasks: &Tasks,
    ) -> Self {
        let (queue, commands) = mpsc::channel(queue_len.max(1));
        let finish = CancellationToken::new();
        tasks.spawn(run(store.clone(), turns, rate, wake.clone(), commands, finish.clone()));
        Self { queue, store, rate, wake, finish, tasks: tasks.clone() }
    }

    /// The last commit, at shutdown: new messages are refused from now on,
    /// what is queued is committed, and the task ends (at most `within`).
    pub async fn finish(&self, within: Duration) {
        self.finish.cancel();
        // The queue's receiver goes with the task, once it has committed.
        if tokio::time::timeout(within, self.queue.closed()).await.is_err() {
            tracing::warn!(?within, "the chat writer did not finish in time");
        }
    }

    /// Queues a message; the answer (its id once committed, or why not)
    /// comes on the returned channel, so the sender need not wait for it.
    /// Waits only while the queue is full.
    pub async fn submit(&self, user_id: i64, room: i64, text: ChatText) -> Saved {
        let (saved, outcome) = oneshot::channel();
        let post = Post { user_id, room, text, saved };
        // Refused (shutting down): the post, and with it the sender of its
        // answer, is dropped here, so the answer says "not saved".
        let _ = self.queue.send(Command::Post(post)).await;
        Saved(outcome)
    }

    /// Edits or deletes a message, if allowed; returns the change's position
    /// once committed (the follower then publishes it). Not retried: a retried
    /// delete whose first answer was lost would be told "not found".
    pub async fn change(&self, change: Change<'_>) -> Result<i64, ChangeError> {
        let timed_out = |_| ChangeError::Store(StoreError::timed_out("changing a message"));
        // Refused without the log's lock: a refusal costs the others nothing.
        tokio::time::timeout(ATTEMPT_TIMEOUT, self.store.check_change(change)).await.map_err(timed_out)??;
        let position = tokio::time::timeout(ATTEMPT_TIMEOUT * 2, self.store.change(change, self.rate))
            .await
            .map_err(timed_out)??;
        self.wake.notify_one();
        // The old text leaves SQLite's log too (secure_delete has zeroed it
        // in the database's pages). Not waited for: a checkpoint waits out
        // the readers.
        let store = self.store.clone();
        self.tasks.spawn(async move { store.checkpoint().await });
        Ok(position)
    }

    /// Commits an upload's message (`caption`, possibly empty) with its
    /// file at once, in its own transaction (uploads are rare, and their
    /// allowance is checked under the log's lock); the follower then
    /// publishes it like any message. Not retried: the upload's objects are
    /// the caller's to give up if this fails.
    pub async fn post_file(
        &self,
        user_id: i64,
        room: i64,
        caption: &str,
        file: &NewFile,
        per_hour: u32,
    ) -> Result<UploadOutcome, StoreError> {
        let message = NewMessage { user_id, room, body: caption };
        let outcome = tokio::time::timeout(
            ATTEMPT_TIMEOUT * 2,
            self.store.append_file(message, file, per_hour, self.rate),
        )
        .await
        .map_err(|_| StoreError::timed_out("committing an upload"))??;
        if matches!(outcome, UploadOutcome::Appended(_)) {
            self.wake.notify_one();
        }
        Ok(outcome)
    }

    /// Waits until everything queued so far is committed; returns the
    /// position of the last message this node committed (0: none).
    pub async fn flush(&self) -> i64 {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_err() {
            return 0;
        }
        flushed.await.unwrap_or(0)
    }
}

async fn run(
    store: Store,
    turns: WriteTurns,
    rate: Rate,
    wake: Arc<Notify>,
    mut commands: mpsc::Receiver<Command>,
    finish: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut posts = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    let mut last_committed = 0;
    let mut last_pruned = tokio::time::Instant::now();
    loop {
        let received = tokio::select! {
            received = commands.recv_many(&mut batch, MAX_BATCH) => received,
            // From here on, sends fail (NotSaved); what is queued is still committed.
            _ = finish.cancelled(), if !commands.is_closed() => {
                commands.close();
                continue;
            }
        };
        if received == 0 {
            break;
        }
        for command in batch.drain(..) {
            match command {
                Command::Post(post) => posts.push(post),
                Command::Flush(done) => flushes.push(done),
            }
        }
        if !posts.is_empty() {
            if let Some(last) = commit(&store, &turns, rate, &mut posts).await {
                last_committed = last;
            }
            wake.notify_one();
        }
        if last_pruned.elapsed() >= KEEP_BATCHES {
            last_pruned = tokio::time::Instant::now();
            let cutoff = time::OffsetDateTime::now_utc() - KEEP_BATCHES;
            if let Err(e) = store.prune_batches((cutoff.unix_timestamp_nanos() / 1_000_000) as i64).await {
                tracing::debug!(error = %e, "could not prune old batch records");
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(last_committed);
        }
    }
    tracing::debug!("the chat writer stopped");
}

/// Commits the batch and answers its senders; returns the last position committed.
async fn commit(store: &Store, turns: &WriteTurns, rate: Rate, posts: &mut Vec<Post>) -> Option<i64> {
    let messages: Vec<NewMessage<'_>> = posts
        .iter()
        .map(|p| NewMessage { user_id: p.user_id, room: p.room, body: p.text.as_str() })
        .collect();
    // 128 random bits: no other batch has this id.
    let mut batch = Batch { id: crate::token::hex(16), messages, retried: false };
    let mut attempt = 0;
    let started = std::time::Instant::now();
    let outcomes = loop {
        // The wait for the turn is part of the attempt, and the turn is
        // not kept through the sleep before a retry.
        let one_attempt = async {
            let _turn = turns.take().await;
            store.append(&batch, rate).await
        };
        let attempt_result = tokio::time::timeout(ATTEMPT_TIMEOUT, one_attempt)
            .await
            .unwrap_or_else(|_| Err(crate::store::StoreError::timed_out("committing a batch")));
        match attempt_result {
            Ok(outcomes) => break outcomes,
            Err(e) if attempt < RETRY_DELAYS.len() => {
                tracing::warn!(error = %e, attempt, "committing chat messages failed; retrying");
                tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                attempt += 1;
                batch.retried = true;
            }
            Err(e) => {
                tracing::error!(error = %e, messages = posts.len(), "chat messages could not be saved");
                drop(batch);
                for post in posts.drain(..) {
                    let _ = post.saved.send(Err(NotSent::NotSaved));
                }
                return None;
            }
        }
    };
    drop(batch);
    metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::histogram!(crate::metrics::COMMIT_BATCH_SIZE).record(outcomes.len() as f64);
    let committed = outcomes.iter().filter(|o| matches!(o, Outcome::Appended(_))).count();
    metrics::counter!(crate::metrics::MESSAGES_COMMITTED).increment(committed as u64);
    let mut last = None;
    for (post, outcome) in posts.drain(..).zip(outcomes) {
        let _ = post.saved.send(match outcome {
            Outcome::Appended(id) => {
                last = Some(id);
                Ok(id)
            }
            Outcome::RateLimited { retry_after_ms } => {
                Err(NotSent::RateLimited(Duration::from_millis(retry_after_ms.max(0) as u64)))
            }
            Outcome::NotAMember => Err(NotSent::NotAMember),
        });
    }
    last
}
