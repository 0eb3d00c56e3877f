//! Giving freed memory back to the system.
//!
//! Every HTTP request and every WebSocket upgrade allocates a few KiB for a
//! moment, in between the small allocations a socket keeps for its life.
//! glibc's allocator keeps the freed pages in between for reuse, so after a
//! crowd connects the process holds several KiB per socket it no longer
//! uses. `malloc_trim` hands whole free pages back (it walks the heap and
//! takes each arena's lock briefly), so it runs now and then, off the async
//! workers.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed pages are handed back.
const EVERY: Duration = Duration::from_secs(10);

/// Runs until `stop`.
pub async fn give_back(stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of glibc's own heap; it
    // is thread-safe and touches nothing we hold.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
