//! The `user count`, published on a trailing edge.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Count, PresenceSettings};
use crate::realtime::stream::{Event, Events};

/// Publishes `user count` on a trailing edge: when joins and leaves pause for
/// `count_quiet`, or `count_max_delay` after the first change if they do not.
/// Every publish costs one frame per socket, so a storm of N joins costs each
/// socket a handful of frames instead of N, and the true count still goes out
/// within `count_quiet` of the last change.
/// Counts go out through the event stream, so a socket waits on one
/// channel for deliveries and counts alike.
pub(super) struct CountClock {
    latest: Mutex<Count>,
    events: Events,
    changed: Notify,
    settings: PresenceSettings,
}

impl CountClock {
    pub(super) fn new(settings: PresenceSettings, events: Events) -> Arc<Self> {
        Arc::new(Self { latest: Mutex::new(Count::of(0)), events, changed: Notify::new(), settings })
    }

    pub(super) fn latest(&self) -> Count {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Something changed; publish once things settle.
    pub(super) fn changed(&self) {
        self.changed.notify_one();
    }

    /// Runs until `stop`, publishing `value()` on each trailing edge.
    pub(super) async fn run(self: Arc<Self>, value: impl Fn() -> usize, stop: CancellationToken) {
        let PresenceSettings { count_quiet, count_max_delay, .. } = self.settings;
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = stop.cancelled() => return,
            }
            let deadline = tokio::time::Instant::now() + count_max_delay;
            loop {
                let quiet_until = (tokio::time::Instant::now() + count_quiet).min(deadline);
                tokio::select! {
                    _ = self.changed.notified() => {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(quiet_until) => break,
                    _ = stop.cancelled() => return,
                }
            }
            // Always publish, even a value equal to the last one published: a
            // socket that joined since was sent its own exact count, which may
            // differ (2 → join: 3 → leave: 2). Each socket skips a value it has.
            let count = Count::of(value());
            *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = count.clone();
            self.events.publish(Event::Count(count));
        }
    }
}
