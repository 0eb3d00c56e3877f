//! The sequencer: the one task that writes chat messages. It drains whatever
//! is queued, commits it in one transaction (group commit), and only then
//! publishes the messages, in id order, to the history and to every socket.
//! So a message anyone saw is on disk, and everyone sees one order.

use std::{sync::Arc, time::Duration};

use sqlx::Row;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    history::{History, KEEP},
    hub::{Event, Hub},
    protocol::{ChatMessage, ChatText, chat_message_frame},
};
use crate::db::Pool;

/// How many messages one transaction takes at most.
const MAX_BATCH: usize = 512;
/// Attempts at committing a batch before its senders are told it failed.
const RETRY_DELAYS: [Duration; 3] =
    [Duration::from_millis(50), Duration::from_millis(250), Duration::from_secs(1)];

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[error("the message could not be saved")]
pub struct NotSaved;

struct Post {
    user_id: i64,
    username: Arc<str>,
    text: ChatText,
    saved: oneshot::Sender<Result<i64, NotSaved>>,
}

enum Command {
    Post(Post),
    /// Answered once everything queued before it is committed and published.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Sequencer {
    queue: mpsc::Sender<Command>,
}

impl Sequencer {
    /// Starts the task. It runs until every `Sequencer` handle is dropped,
    /// then commits what is still queued and ends.
    pub fn start(pool: Pool, hub: Hub, history: Arc<History>, queue_len: usize) -> (Self, JoinHandle<()>) {
        let (queue, commands) = mpsc::channel(queue_len.max(1));
        let task = tokio::spawn(run(pool, hub, history, commands));
        (Self { queue }, task)
    }

    /// Queues a message and waits until it is committed; returns its id.
    pub async fn post(&self, user_id: i64, username: Arc<str>, text: ChatText) -> Result<i64, NotSaved> {
        let (saved, outcome) = oneshot::channel();
        let post = Post { user_id, username, text, saved };
        self.queue.send(Command::Post(post)).await.map_err(|_| NotSaved)?;
        outcome.await.map_err(|_| NotSaved)?
    }

    /// Waits until everything queued so far is committed and published.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn run(pool: Pool, hub: Hub, history: Arc<History>, mut commands: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut posts = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    while commands.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for command in batch.drain(..) {
            match command {
                Command::Post(post) => posts.push(post),
                Command::Flush(done) => flushes.push(done),
            }
        }
        if !posts.is_empty() {
            commit_and_publish(&pool, &hub, &history, &mut posts).await;
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    tracing::debug!("sequencer stopped");
}

async fn commit_and_publish(pool: &Pool, hub: &Hub, history: &History, posts: &mut Vec<Post>) {
    let mut attempt = 0;
    let committed = loop {
        match commit(pool, posts).await {
            Ok(committed) => break committed,
            Err(e) if attempt < RETRY_DELAYS.len() => {
                tracing::warn!(error = %e, attempt, "committing chat messages failed; retrying");
                tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, messages = posts.len(), "chat messages could not be saved");
                for post in posts.drain(..) {
                    let _ = post.saved.send(Err(NotSaved));
                }
                return;
            }
        }
    };
    for (post, message) in posts.drain(..).zip(committed) {
        let frame = chat_message_frame(&message);
        history.push(message.id, frame.clone());
        hub.publish(Event::Chat { id: message.id, frame });
        let _ = post.saved.send(Ok(message.id));
    }
}

/// One transaction for the whole batch; ids come back in insertion order.
async fn commit(pool: &Pool, posts: &[Post]) -> Result<Vec<ChatMessage>, sqlx::Error> {
    let sent_at = time::OffsetDateTime::now_utc();
    let millis = (sent_at.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut tx = pool.begin().await?;
    let mut committed = Vec::with_capacity(posts.len());
    for post in posts {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (user_id, body, sent_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(post.user_id)
        .bind(post.text.as_str())
        .bind(millis)
        .fetch_one(&mut *tx)
        .await?;
        committed.push(ChatMessage {
            id,
            username: post.username.to_string(),
            message: post.text.as_str().to_owned(),
            sent_at: from_millis(millis),
        });
    }
    tx.commit().await?;
    Ok(committed)
}

/// The newest `KEEP` messages, oldest first, to fill the history at start.
pub async fn load_recent(pool: &Pool) -> Result<History, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.id, u.username, m.body, m.sent_at
         FROM messages m JOIN users u ON u.id = m.user_id
         ORDER BY m.id DESC LIMIT $1",
    )
    .bind(KEEP as i64)
    .fetch_all(pool)
    .await?;
    let mut recent = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        let message = ChatMessage {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            message: row.try_get("body")?,
            sent_at: from_millis(row.try_get("sent_at")?),
        };
        recent.push((message.id, chat_message_frame(&message)));
    }
    Ok(History::new(recent))
}

fn from_millis(millis: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
