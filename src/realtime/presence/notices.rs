//! The `user` announcements, published at most so often per user. A client
//! that opens and closes its connection hundreds of times a second would
//! otherwise put a line in everyone's chat for each; here each user's
//! announcements go out at once while they are few (a small burst), and
//! past that the user's latest state goes out once their allowance refills,
//! if it differs from the last one published. So the others see a handful
//! of lines, and the last one tells the truth.
//!
//! Only what goes out is held back: who is online (the `online users`
//! snapshot) and the counts change at once. A socket that connects
//! meanwhile has the latest state in its snapshot, and skips the held-back
//! announcement when it comes (it carries its own position, as ever).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tungstenite::Utf8Bytes;

use crate::{
    rate::{Rate, TokenBucket},
    realtime::stream::{Event, Events},
    tasks::Tasks,
};

/// Announcements of one user that go out at once, and how fast the
/// allowance refills: 300 connects and disconnects in a second cost the
/// others at most 6 + 1 lines (the contract allows 10), while someone who
/// reloads a page now and then is announced every time.
const PER_USER: Rate = Rate { burst: 6, per_second: 1.0 };

/// An announcement: its position, whether the user is now connected, the frame.
#[derive(Debug, Clone)]
pub(super) struct Notice {
    pub seq: i64,
    pub connected: bool,
    pub frame: Utf8Bytes,
}

#[derive(Clone)]
pub(super) struct Notices(Arc<Inner>);

struct Inner {
    users: Mutex<HashMap<i64, User>>,
    events: Events,
    /// Wakes the task that sends what was held back.
    held: Notify,
}

struct User {
    allowance: TokenBucket,
    /// The state the others were last told.
    published: Option<bool>,
    /// The latest announcement not yet published, and when it may go.
    waiting: Option<(Notice, Instant)>,
}

impl Notices {
    /// Starts the sender of held-back announcements; it stops with `tasks`.
    pub(super) fn start(events: Events, tasks: &Tasks) -> Self {
        let notices = Self(Arc::new(Inner { users: Mutex::default(), events, held: Notify::new() }));
        tasks.spawn(notices.clone().send_held(tasks.stop_token()));
        notices
    }

    fn users(&self) -> MutexGuard<'_, HashMap<i64, User>> {
        self.0.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `user`'s new state: out now, or held back until their allowance refills.
    pub(super) fn announce(&self, user: i64, notice: Notice) {
        let mut users = self.users();
        let entry = users.entry(user).or_insert_with(|| User {
            allowance: TokenBucket::full(PER_USER),
            published: None,
            waiting: None,
        });
        if entry.waiting.is_none() && entry.allowance.try_take(PER_USER) {
            entry.published = Some(notice.connected);
            self.0.events.publish(Event::Notice { seq: notice.seq, frame: notice.frame });
            return;
        }
        let due = Instant::now() + entry.allowance.wait(PER_USER);
        let due = entry.waiting.as_ref().map_or(due, |(_, at)| (*at).min(due));
        entry.waiting = Some((notice, due));
        drop(users);
        self.0.held.notify_one();
    }

    /// Sends each held-back state when its time comes, if it is news.
    async fn send_held(self, stop: CancellationToken) {
        loop {
            let next = {
                let mut users = self.users();
                let now = Instant::now();
                for user in users.values_mut() {
                    if let Some((notice, _)) = user.waiting.take_if(|(_, due)| *due <= now) {
                        if user.published != Some(notice.connected) && user.allowance.try_take(PER_USER) {
                            user.published = Some(notice.connected);
                            self.0.events.publish(Event::Notice { seq: notice.seq, frame: notice.frame });
                        } else if user.published != Some(notice.connected) {
                            let due = now + user.allowance.wait(PER_USER);
                            user.waiting = Some((notice, due));
                        }
                    }
                }
                // Users with nothing held and a full allowance are as if new.
                users.retain(|_, user| user.waiting.is_some() || !user.allowance.is_full(PER_USER));
                users.values().filter_map(|user| user.waiting.as_ref().map(|(_, due)| *due)).min()
            };
            let sleep =
                next.map_or(Duration::from_secs(3600), |due| due.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.0.held.notified() => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
