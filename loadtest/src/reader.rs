//! One task per client socket: reads every frame, notes the latest
//! `user count` and, for chat messages stamped by our senders, the latency;
//! counts `typing` frames; and, while the fleet is told to type, sends
//! `typing` itself as a keystroke-happy client would.
//! Frames are recognised by prefix rather than parsed whole: the tool must
//! stay cheap next to the server it measures, on the same cores.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::Message;

use crate::client::Ws;

/// What a socket has seen so far, readable while it runs.
#[derive(Default)]
pub struct Seen {
    pub last_count: AtomicU64,
    pub count_frames: AtomicU32,
    /// Milliseconds after the scenario's start when the count first equalled
    /// the target (0 = not yet).
    pub reached_target_ms: AtomicU64,
    pub chat: AtomicU64,
    pub errors: AtomicU64,
    pub typing: AtomicU64,
    /// The most `typing` frames seen in any one second (of the scenario's clock).
    pub typing_max_per_sec: AtomicU64,
}

/// How often a typing socket sends `typing` (a naive client: every keystroke or so).
pub const KEYSTROKE: Duration = Duration::from_millis(250);

/// Stamped messages seen: (sent at, unix ms; latency, µs), handed back at the end.
pub type Latencies = Vec<(u64, u32)>;

pub fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Reads until the socket ends or `stop` turns true; returns the latencies.
/// Sends `typing` every [`KEYSTROKE`] while `typing` is true.
pub fn spawn(
    mut ws: Ws,
    seen: Arc<Seen>,
    target: Arc<AtomicU64>,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    mut typing: watch::Receiver<bool>,
) -> JoinHandle<Latencies> {
    tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut keystrokes = tokio::time::interval(KEYSTROKE);
        keystrokes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut second, mut in_second) = (0u64, 0u64);
        loop {
            let typing_now = *typing.borrow_and_update();
            // `Some(frame)` read, or `None`: time to type (sent outside the
            // select!, which may not hold the stop signal's borrow across it).
            let step = tokio::select! {
                frame = ws.next() => Some(frame),
                _ = stop.wait_for(|stop| *stop) => break,
                _ = keystrokes.tick(), if typing_now => None,
                Ok(()) = typing.changed() => {
                    // People do not all start typing in the same instant:
                    // spread the first keystrokes over the server's 2 s throttle.
                    let random = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8);
                    let jitter = Duration::from_millis(random % 2_000);
                    keystrokes.reset_after(jitter);
                    continue;
                }
            };
            let Some(frame) = step else {
                if ws.send(Message::text(r#"{"event":"typing"}"#)).await.is_err() {
                    break;
                }
                continue;
            };
            let Some(Ok(frame)) = frame else { break };
            let Message::Text(text) = frame else { continue };
            let text = text.as_str();
            if let Some(count) = text.strip_prefix(r#"{"event":"user count","data":"#) {
                let count: u64 = count.trim_end_matches('}').parse().unwrap_or(0);
                seen.last_count.store(count, Ordering::Relaxed);
                seen.count_frames.fetch_add(1, Ordering::Relaxed);
                if count == target.load(Ordering::Relaxed)
                    && seen.reached_target_ms.load(Ordering::Relaxed) == 0
                {
                    seen.reached_target_ms
                        .store(start.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
                }
            } else if text.starts_with(r#"{"event":"chat message""#) {
                seen.chat.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = stamp(text) {
                    let micros = now_nanos().saturating_sub(sent) / 1000;
                    latencies.push(((sent / 1_000_000) as u64, micros.min(u128::from(u32::MAX)) as u32));
                }
            } else if text.starts_with(r#"{"event":"typing""#) {
                seen.typing.fetch_add(1, Ordering::Relaxed);
                let now = start.elapsed().as_secs();
                if now != second {
                    (second, in_second) = (now, 0);
                }
                in_second += 1;
                seen.typing_max_per_sec.fetch_max(in_second, Ordering::Relaxed);
            } else if text.starts_with(r#"{"event":"error""#) {
                seen.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        latencies
    })
}

/// Our senders write "SEQ:UNIX_NANOS" as the message text.
fn stamp(frame: &str) -> Option<u128> {
    let start = frame.find(r#""message":""#)? + r#""message":""#.len();
    let text = &frame[start..];
    let text = &text[..text.find('"')?];
    text.split_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_stamp() {
        let frame =
            r#"{"event":"chat message","data":{"id":1,"username":"u","message":"7:123456","sentAt":"x"}}"#;
        assert_eq!(super::stamp(frame), Some(123456));
    }
}
