//! The ping clock: one timer for every socket, instead of one per socket,
//! ticking into the event stream. Odd beats say "ping now", even beats say
//! "whoever has not answered the last ping is gone"; the even beat comes
//! `timeout` after the odd one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::stream::{Event, Events};
use crate::tasks::Tasks;

/// What a beat asks of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Ping,
    Check,
}

impl Beat {
    pub fn of(n: u64) -> Self {
        if n % 2 == 1 { Beat::Ping } else { Beat::Check }
    }
}

/// Starts the clock; it stops at `shutdown`.
pub fn start(
    interval: Duration,
    timeout: Duration,
    events: Events,
    shutdown: CancellationToken,
    tasks: &Tasks,
) {
    let until_next_ping = interval.saturating_sub(timeout);
    tasks.spawn(async move {
        let mut beat = 0;
        loop {
            for wait in [until_next_ping, timeout] {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                beat += 1;
                events.publish(Event::Beat(beat));
            }
        }
    });
}
