//! On a cluster: reading back the join and leave announcements and the
//! other nodes' counts, on notification and by polling, and sending the
//! announcements to this node's sockets.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{cluster::Cluster, notices::Notice};
use crate::{
    realtime::wire::frames::{UserNotice, frame},
    store::cluster::Announcement,
};

/// How many announcements one read takes at most.
const READ_BATCH: usize = 512;
/// The least time between two reads of the announcements and counts: in a
/// storm every node's batch notifies every other node, and one read per
/// spacing serves them all (counts go out on a 30 ms trailing edge anyway).
const READ_SPACING: Duration = Duration::from_millis(20);

pub(super) async fn follow(cluster: Arc<Cluster>, mut position: i64, stop: CancellationToken) {
    let poll = cluster.node().timing().poll;
    let store = cluster.node().store().clone();
    loop {
        tokio::select! {
            _ = cluster.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.cancelled() => return,
        }
        match store.announcements_after(position, READ_BATCH).await {
            Ok(announcements) => {
                if announcements.len() == READ_BATCH {
                    cluster.wake.notify_one();
                }
                for announcement in announcements {
                    position = announcement.seq;
                    let mut state = cluster.state();
                    state.online = announcement.online_users.max(0) as usize;
                    state.names.set(&announcement.username, announcement.connected);
                    state.announced = announcement.seq;
                    // Published under the lock: a socket's snapshot and the
                    // stream then agree on which announcements it reflects.
                    cluster.notices.announce(announcement.user_id, notice(&announcement));
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read announcements"),
        }
        match store.elsewhere(cluster.node().id()).await {
            Ok(elsewhere) => {
                let mut state = cluster.state();
                if state.elsewhere != elsewhere.connections {
                    state.elsewhere = elsewhere.connections;
                    drop(state);
                    cluster.counts.changed();
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read the other nodes' counts"),
        }
        tokio::time::sleep(READ_SPACING).await;
    }
}

fn notice(announcement: &Announcement) -> Notice {
    let notice = UserNotice {
        username: &announcement.username,
        current_users: announcement.current_users.max(0) as usize,
        online_users: announcement.online_users.max(0) as usize,
        connected: announcement.connected,
    };
    Notice { seq: announcement.seq, connected: announcement.connected, frame: frame("user", &notice) }
}
