//! Filling the queue: after every change this node's follower publishes
//! (and at least once a second), new messages are planned (who is pushed
//! for each, counted per user and room) and the users' rooms that are due
//! are taken: each becomes a delivery per subscription, unless the user has
//! a socket open anywhere at that moment. Both steps are decided in the
//! database (`store::push`), so on a cluster every node runs this loop and
//! each message is planned once and each push taken once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::{
    realtime::Realtime,
    store::{Store, log::now_millis, push::Planned},
    tasks::Tasks,
};

/// Messages one planning step reads at most.
const PLAN_BATCH: usize = 500;
/// Due rooms one taking step looks at at most.
const TAKE_BATCH: usize = 200;
/// Due pushes are looked for at least this often: a window ends within it.
const TICK: Duration = Duration::from_millis(500);
/// While another node plans, look again this soon (it may have read the
/// log just before our message committed)…
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// …this many times at most (the tick comes next).
const BUSY_TRIES: usize = 20;

pub(super) struct Queue {
    pub store: Store,
    pub realtime: Realtime,
    /// At most one push per user and room per this long.
    pub window: Duration,
    /// Deliveries are given up this long after they are made.
    pub retry_for: Duration,
    /// Wakes the sender when deliveries were queued.
    pub sent: Arc<Notify>,
}

impl Queue {
    pub async fn run(self, tasks: Tasks) {
        let mut published = self.realtime.published();
        let mut following = true;
        loop {
            tokio::select! {
                changed = published.changed(), if following => following = changed.is_ok(),
                _ = tokio::time::sleep(TICK) => {}
                _ = tasks.stopping() => return,
            }
            self.plan().await;
            self.take().await;
        }
    }

    /// Plans every message not yet planned. Catching up on many, it
    /// pauses after each round as long as the round took: SQLite has one
    /// writer at a time and does not queue them, so rounds back to back
    /// would keep chat messages from committing (a million messages
    /// imported at once kept every sender waiting past its deadline).
    async fn plan(&self) {
        let mut busy = 0;
        loop {
            let round = tokio::time::Instant::now();
            match self.store.plan_pushes(PLAN_BATCH).await {
                Ok(Planned::Done { more: true, .. }) => tokio::time::sleep(round.elapsed()).await,
                Ok(Planned::Done { .. }) => return,
                Ok(Planned::Busy) if busy < BUSY_TRIES => {
                    busy += 1;
                    tokio::time::sleep(BUSY_PAUSE).await;
                }
                Ok(Planned::Busy) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not plan pushes");
                    return;
                }
            }
        }
    }

    /// Takes what is due: first who of those users has a socket open (on
    /// any node), then, in one transaction, the rows themselves.
    async fn take(&self) {
        loop {
            let now = now_millis();
            let due = match self.store.due_pushes(now, TAKE_BATCH).await {
                Ok(due) if due.is_empty() => return,
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the pushes due");
                    return;
                }
            };
            let mut users: Vec<i64> = due.iter().map(|d| d.user_id).collect();
            users.sort_unstable();
            users.dedup();
            let with_sockets = match self.realtime.with_sockets(&users).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "could not ask who is online for pushes");
                    return;
                }
            };
            let online: HashMap<i64, bool> = users.iter().map(|u| (*u, with_sockets.contains(u))).collect();
            match self.store.take_pushes(now, TAKE_BATCH, &online, self.window, self.retry_for).await {
                Ok(0) => {}
                Ok(_) => self.sent.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not take the pushes due");
                    return;
                }
            }
            if due.len() < TAKE_BATCH {
                return;
            }
        }
    }
}
