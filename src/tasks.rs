//! The server's background work, owned: every long-lived task is spawned
//! through [`Tasks`], so shutdown can tell them all to stop and wait until
//! each has finished what it does on the way out (the read markers' last
//! write, a cluster node leaving the cluster) before the pool closes.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Cheap to clone; every clone spawns into the same set.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    /// Cancelled once the sockets are gone: background tasks finish and end.
    stop: CancellationToken,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until it ends; it should end soon after [`Tasks::stopping`].
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Resolves when the tasks are asked to stop.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Whether the tasks have been asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// The stop signal, for a task to hold.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Asks every task to stop and waits (at most `within`) until they all
    /// have; says whether they did.
    pub async fn stop(&self, within: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait()).await.is_ok()
    }
}
