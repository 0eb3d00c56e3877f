//! The ping clock: one timer for every socket, instead of one per socket.
//! Odd beats say "ping now", even beats say "whoever has not answered the last
//! ping is gone"; the even beat comes `timeout` after the odd one.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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

/// Starts the clock; it stops at `shutdown`. Sockets follow the receiver.
pub fn start(interval: Duration, timeout: Duration, shutdown: CancellationToken) -> watch::Receiver<u64> {
    let (beat, beats) = watch::channel(0);
    let until_next_ping = interval.saturating_sub(timeout);
    tokio::spawn(async move {
        loop {
            for wait in [until_next_ping, timeout] {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                beat.send_modify(|beat| *beat += 1);
            }
        }
    });
    beats
}
